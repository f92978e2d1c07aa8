import type { Readable } from 'node:stream';

/** The longest partial line kept while waiting for its end: a line longer than this is cut. */
const MAX_LINE_BYTES = 64 * 1024;

/**
 * Watches a run's stdout for the first line matching `pattern`; calls `onMatch` with it once
 * and stops watching. Lines are split on '\n'; a line longer than 64 KiB is judged in pieces.
 */
export function watchLines(stream: Readable, pattern: RegExp, onMatch: (line: string) => void): () => void {
  let partial = '';
  const onData = (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    if (partial.length > MAX_LINE_BYTES) {
      lines.push(partial);
      partial = '';
    }
    const found = lines.find((line) => pattern.test(line));
    if (found !== undefined) {
      stop();
      onMatch(found);
    }
  };
  const onEnd = () => {
    // The last line may lack its '\n'.
    if (partial && pattern.test(partial)) onMatch(partial);
    stop();
  };
  const stop = () => {
    stream.off('data', onData);
    stream.off('end', onEnd);
  };
  stream.on('data', onData);
  stream.once('end', onEnd);
  return stop;
}
