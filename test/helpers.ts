import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { after } from 'node:test';
import { pino } from 'pino';
import { createRuntime, type Runtime, type RuntimeOptions, type Workspace, type ActorSnapshot, type Command } from '../src/index.js';

/** test/fixtures, from the build output (dist/test) back to the sources. */
export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures');

export function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

const runtimes = new Set<Runtime>();

/** A runtime that is shut down when the test file ends, whatever happened. */
export async function startRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  const rt = await createRuntime({ workers: 1, ...options });
  runtimes.add(rt);
  return rt;
}

after(async () => {
  await Promise.all([...runtimes].map((rt) => rt.shutdown({ graceMs: 0 })));
  runtimes.clear();
});

/** Pids a test saw started outside any runtime, to add to: SIGKILLed when the test file ends, whatever happened. */
export function killedAtTheEnd(): Set<number> {
  const pids = new Set<number>();
  after(() => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  return pids;
}

/** Whether a pid names a live (non-zombie) process. */
export function isAlive(pid: number): boolean {
  if (!existsSync(`/proc/${pid}/stat`)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false; // exited between the two reads
  }
}

/** Resolves with the first value of `next` for which `predicate` holds; rejects after `timeoutMs`. */
export function waitFor<T>(
  subscribe: (observer: (value: T) => void) => () => void,
  predicate: (value: T) => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let unsubscribe: () => void = () => undefined;
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    unsubscribe = subscribe((value) => {
      if (!predicate(value)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(value);
    });
  });
}

export function stateOf(snapshot: ActorSnapshot | null): string {
  if (!snapshot) return '';
  return typeof snapshot.value === 'string' ? snapshot.value : Object.keys(snapshot.value)[0]!;
}

/** The state's name one level down where it has one (`running.up`), as readiness shows it. */
export function nestedStateOf(snapshot: ActorSnapshot | null): string {
  const value = snapshot?.value;
  if (!value) return '';
  if (typeof value === 'string') return value;
  const [key, inner] = Object.entries(value)[0]!;
  return typeof inner === 'string' ? `${key}.${inner}` : key;
}

/** The command's snapshot once its state (named by `nameOf`) is `wanted`, now or after its next transitions. */
export function untilState(cmd: Command, wanted: string, what = wanted, nameOf = nestedStateOf): Promise<ActorSnapshot> {
  const now = cmd.getSnapshot();
  if (nameOf(now) === wanted) return Promise.resolve(now!);
  return waitFor(cmd.subscribe.bind(cmd), (s) => nameOf(s) === wanted, `${cmd.label} in ${what}`);
}

/** The command's snapshot once its actor is in one of `states` (now, or after its next transitions). */
export function reach(cmd: Command, states: readonly string[]): Promise<ActorSnapshot> {
  const current = cmd.getSnapshot();
  if (current && states.includes(stateOf(current))) return Promise.resolve(current);
  return waitFor(cmd.subscribe.bind(cmd), (s) => states.includes(stateOf(s)), `${cmd.label} in ${states.join('|')}`);
}

/** Resolves once the command's run exited and its actor is done (nothing more will start). */
export async function untilFinished(cmd: Command): Promise<void> {
  await cmd.exited;
  if (cmd.getSnapshot()?.status === 'active') await waitFor(cmd.subscribe.bind(cmd), (s) => s.status !== 'active', `${cmd.label} finished`);
}

/** A port nobody listens on now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once the workspace's log for `commandId` contains `text`. */
export async function waitForOutput(ws: Workspace, commandId: string, text: string, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  // Output arrives as pipe reads with no event of its own on the public API: poll the ring.
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    const out = (await ws.logs(commandId, { stream: 'both' })).toString();
    if (out.includes(text)) return out;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${JSON.stringify(text)} in output: ${JSON.stringify(out)}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Polls /proc until `pid` is gone; for processes that are not our children. */
export async function waitGone(pid: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; isAlive(pid); delay = Math.min(delay * 2, 50)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} still alive after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/**
 * Resolves with the first value of `read()` for which `predicate` holds, reading it every
 * `everyMs`: for what has no event of its own on the public API (a list, a count, a log line).
 */
export function pollUntil<T>(
  read: () => T | Promise<T>,
  predicate: (value: T) => boolean,
  what: string,
  everyMs = 5,
): Promise<T> {
  return waitFor<T>(
    (observer) => {
      const timer = setInterval(() => void Promise.resolve(read()).then(observer), everyMs);
      return () => clearInterval(timer);
    },
    predicate,
    what,
  );
}

/** Live processes whose command line mentions `marker`: what a leak would look like. */
export function processesMentioning(marker: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1').includes(marker) && isAlive(Number(name))) out.push(Number(name));
    } catch {
      continue; // the process exited while we looked
    }
  }
  return out;
}

/**
 * A workspace stopped by its nproc quota: two sleepers under `limits.nproc: 1` with
 * `quota.nproc: 'kill'`, and one sample to find the breach. Resolves once it has stopped.
 */
export async function quotaKilledWorkspace(label: string) {
  const rt = await startRuntime({ statsIntervalMs: 0 });
  const ws = await rt.createWorkspace({ label, limits: { nproc: 1 }, quota: { nproc: 'kill' } });
  const a = await ws.run({ exec: fixture('forever.sh') });
  const b = await ws.run({ exec: fixture('forever.sh') });
  await waitForOutput(ws, a.id, 'ready');
  await waitForOutput(ws, b.id, 'ready');
  const stopped = waitFor(ws.subscribe.bind(ws), (s) => stateOf(s) === 'stopped', 'the quota stop');
  await ws.stats();
  const final = await stopped;
  return { rt, ws, a, b, final };
}

export interface LogRecord {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A pino logger whose every line is kept, parsed, in `records`. */
export function capturingLogger(level: 'debug' | 'info' | 'warn' | 'error' = 'debug') {
  const records: LogRecord[] = [];
  const logger = pino({ level }, { write: (line: string) => records.push(JSON.parse(line) as LogRecord) });
  return { logger, records };
}
