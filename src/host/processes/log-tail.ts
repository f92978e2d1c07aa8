// Reading what a captured stream's files hold, newest last, without reading them whole: the read
// side of log-file.ts, which only writes and rotates.
import { promises as fs } from 'node:fs';
import { lastLines } from '../../protocol/log-lines.js';

/**
 * The last `lines` lines (or `bytes` bytes) of a file and the rotated files behind it, oldest
 * first. Reads backwards from the end, one block at a time: a 10 MiB file is not read whole
 * for 20 lines.
 */
export async function readTail(path: string, keep: number, want: { lines?: number; bytes?: number }): Promise<Buffer> {
  const files = [path, ...Array.from({ length: keep }, (_, i) => `${path}.${i + 1}`)];
  const parts: Buffer[] = [];
  let bytes = 0;
  let newlines = 0;
  const enough = () =>
    want.lines !== undefined ? newlines > want.lines : want.bytes !== undefined && bytes >= want.bytes;
  for (const file of files) {
    const handle = await fs.open(file, 'r').catch((error: unknown) => {
      if ((error as { code?: string }).code === 'ENOENT') return null;
      throw error;
    });
    if (!handle) continue;
    try {
      let end = (await handle.stat()).size;
      while (end > 0 && !enough()) {
        const length = Math.min(64 * 1024, end);
        const block = Buffer.allocUnsafe(length);
        await handle.read(block, 0, length, end - length);
        end -= length;
        parts.unshift(block);
        bytes += length;
        for (let i = block.indexOf(10); i !== -1; i = block.indexOf(10, i + 1)) newlines++;
      }
    } finally {
      await handle.close();
    }
    if (enough()) break;
  }
  const all = Buffer.concat(parts);
  if (want.lines !== undefined) return lastLines(all, want.lines);
  if (want.bytes !== undefined && all.length > want.bytes) return all.subarray(all.length - want.bytes);
  return all;
}
