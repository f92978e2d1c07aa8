// What a worker or a child process of a test reads of /proc while it holds its own loop (it cannot
// import helpers.ts, which registers node:test hooks): the live processes a marker names.
import { readdirSync, readFileSync } from 'node:fs';

/** Live (not zombie) pids whose command line holds `marker`, this process left out (a child given it as an argument). */
export function markedPids(marker: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1').includes(marker) && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') out.push(Number(name));
    } catch {
      continue;
    }
  }
  return out;
}

/** Whether `pid` has exited (gone, or a zombie nobody reaped yet). */
export function hasExited(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z';
  } catch {
    return true;
  }
}

/**
 * Blocks this thread — its loop hears nothing meanwhile, so only the addon's own threads act —
 * until `done()` holds; throws past `ms`.
 */
export function holdTheLoopUntil(done: () => boolean, what: string, ms = 10_000): void {
  const held = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    Atomics.wait(held, 0, 0, 2);
  }
}
