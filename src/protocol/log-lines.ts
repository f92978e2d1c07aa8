// Lines of captured output: what `logs --lines N` shows, from a ring or a file alike.

/** The last `n` lines of `data` (a last line without its newline counts as one). */
export function lastLines(data: Buffer, n: number): Buffer {
  if (n === 0 || data.length === 0) return Buffer.alloc(0);
  // A final newline ends the last line; it does not start an empty one.
  let before = data[data.length - 1] === 10 ? data.length - 1 : data.length;
  for (let seen = 0; ; ) {
    // lastIndexOf with a negative offset would count from the end.
    const newline = before === 0 ? -1 : data.lastIndexOf(10, before - 1);
    if (newline === -1) return data;
    if (++seen === n) return data.subarray(newline + 1);
    before = newline;
  }
}
