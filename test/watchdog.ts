// What a test process starts that would outlive it — a Slurm cluster's daemons, a `shuma daemon`,
// a runtime in a child process and what it adopted — is also registered with a watchdog
// (scripts/test-watchdog.sh) that cleans it up if the test process dies first, SIGKILL included,
// and kills the test process if the runner that started it (`node --test`) died. A test still
// cleans up after itself as before, then withdraws what it registered.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { STATE_MARK_VARIABLE, stateMark } from '../src/host/persistence/orphans.js';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/test-watchdog.sh');

/** A process named so that a reused pid is never taken for it: its start time (/proc/PID/stat field 22). */
export function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? null : (fields[19] ?? null);
  } catch {
    return null;
  }
}

let watchdog: { child: ChildProcess; stdin: Writable } | null = null;

function started(): Writable {
  if (watchdog) return watchdog.stdin;
  const self = startTimeOf(process.pid)!;
  // The runner: the process that started this test file under `node --test`; run directly, there is none.
  const runner = process.env.NODE_TEST_CONTEXT && startTimeOf(process.ppid) ? [String(process.ppid), startTimeOf(process.ppid)!] : [];
  const child = spawn(SCRIPT, [String(process.pid), self, ...runner], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  const stdin = child.stdin!;
  // Neither keeps this process alive: its pipe ends when this process ends, however it ends.
  child.unref();
  (stdin as Writable & { unref?: () => void }).unref?.();
  stdin.on('error', () => undefined);
  watchdog = { child, stdin };
  return stdin;
}

/** What the watchdog does if this process dies first. */
export type Leftover = { pid: number } | { env: string } | { run: string[] };

function lineOf(what: Leftover): string | null {
  if ('pid' in what) {
    const start = startTimeOf(what.pid);
    return start === null ? null : `pid ${what.pid} ${start}`;
  }
  if ('env' in what) return `env ${what.env}`;
  return `run ${what.run.join(' ')}`;
}

/** Registers a clean-up for this process's death; the function returned withdraws it (call it once cleaned up). */
export function cleanUpIfKilled(what: Leftover): () => void {
  const line = lineOf(what);
  if (line === null || /[\n]/.test(line)) return () => undefined;
  started().write(`${line}\n`);
  return () => void watchdog?.stdin.write(`forget ${line}\n`);
}

/** The watchdog's pid (for the test of the watchdog itself). */
export function watchdogPid(): number | undefined {
  return watchdog?.child.pid;
}

/**
 * A runtime in a child process on `stateDir` (made here, 0700, if missing: its mark names the
 * directory's real path): every process it starts carries the mark, adopted ones included, and
 * is killed if this process dies first. The function returned withdraws it.
 */
export function cleanUpStateDirIfKilled(stateDir: string): () => void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  return cleanUpIfKilled({ env: `${STATE_MARK_VARIABLE}=${stateMark(stateDir)}` });
}
