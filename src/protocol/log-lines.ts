// Lines of captured output: what `logs --lines N` shows, from a ring or a file alike.

/**
 * The last `n` lines of `data` (a last line without its newline counts as one). `cutAtStart`: the
 * data is the end of a longer stream (a ring that let its oldest bytes go), so its first line is
 * likely a line's end: shown only when it is all there is, as `tail -n` never shows half a line.
 */
export function lastLines(data: Buffer, n: number, cutAtStart = false): Buffer {
  if (n === 0 || data.length === 0) return Buffer.alloc(0);
  // A final newline ends the last line; it does not start an empty one.
  let before = data[data.length - 1] === 10 ? data.length - 1 : data.length;
  for (let seen = 0; ; ) {
    // lastIndexOf with a negative offset would count from the end.
    const newline = before === 0 ? -1 : data.lastIndexOf(10, before - 1);
    if (newline === -1) return cutAtStart && seen > 0 ? data.subarray(before + 1) : data;
    if (++seen === n) return data.subarray(newline + 1);
    before = newline;
  }
}
