// `shuma daemon` and its client commands driven as a user drives them: the built CLI in child
// processes, in temp directories, every daemon stopped when the test file ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { STATE_MARK_VARIABLE, stateMark } from '../src/host/persistence/orphans.js';
import { isAlive, pollUntil } from './helpers.js';
import { cleanUpIfKilled } from './watchdog.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MAIN = path.join(ROOT, 'dist/src/cli/main.js');

const scratch: string[] = [];
const daemons = new Set<Daemon>();

/** A short temp directory (socket paths are limited to 107 bytes), removed at the end. */
export function tempDir(prefix = 'shuma-d-'): string {
  const dir = mkdtempSync(path.join('/tmp', prefix));
  scratch.push(dir);
  return dir;
}

after(async () => {
  await Promise.all([...daemons].map((d) => d.stop('SIGTERM')));
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

export interface Lines {
  lines: string[];
  stderr: () => string;
  /** The first stdout line matching `re` (seen already, or the next one). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<number | null>;
}

export function follow(child: ChildProcess): Lines {
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (line: string) => void }> = [];
  let partial = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code, signal) => {
      if (signal) stderr += `[killed by ${signal}]`;
      resolve(code);
    }),
  );
  return {
    lines,
    stderr: () => stderr,
    exited,
    waitFor: (re, timeoutMs = 20_000) => {
      const seen = lines.find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${re} in:\n${lines.join('\n')}\n${stderr}`)), timeoutMs);
        waiters.push({ re, resolve: (l) => (clearTimeout(timer), resolve(l)) });
        void exited.then(() => setTimeout(() => reject(new Error(`exited without a line matching ${re}:\n${lines.join('\n')}\n${stderr}`)), 100));
      });
    },
  };
}

export interface Daemon extends Lines {
  pid: number;
  home: string;
  socket: string;
  stateDir: string;
  env: NodeJS.ProcessEnv;
  /** The daemon's process, for a test that takes its output away. */
  child: ChildProcess;
  /** Signals the daemon and resolves with its exit code once it is gone. */
  stop(signal: NodeJS.Signals): Promise<number | null>;
}

/** Starts `shuma daemon` with SHUMA_HOME in a temp directory; resolves once it serves. */
export async function startDaemon(options: { home?: string; args?: string[] } = {}): Promise<Daemon> {
  const home = options.home ?? path.join(tempDir(), 'home');
  // A client command run after this daemon stopped must fail, not start another behind the test.
  const env = { ...process.env, SHUMA_HOME: home, SHUMA_NO_DAEMON_START: '1' };
  const child = spawn(process.execPath, [MAIN, 'daemon', ...(options.args ?? [])], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  // If this test process dies before its after(): the daemon, and what it started (marked with its stateDir).
  const leftovers = [cleanUpIfKilled({ pid: child.pid! })];
  const out = follow(child);
  let exitCode: number | null | undefined;
  void out.exited.then((code) => (exitCode = code));
  const daemon: Daemon = {
    ...out,
    pid: child.pid!,
    home,
    socket: path.join(home, 'shuma.sock'),
    stateDir: path.join(home, 'state'),
    env,
    child,
    stop: async (signal) => {
      if (exitCode === undefined) child.kill(signal);
      const code = await out.exited;
      daemons.delete(daemon);
      for (const withdraw of leftovers.splice(0)) withdraw();
      return code;
    },
  };
  daemons.add(daemon);
  await out.waitFor(/^shuma daemon: pid \d+, serving /);
  if (existsSync(daemon.stateDir)) leftovers.push(cleanUpIfKilled({ env: `${STATE_MARK_VARIABLE}=${stateMark(daemon.stateDir)}` }));
  return daemon;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one client command to its end. */
export function cli(args: readonly string[], env: NodeJS.ProcessEnv, input?: { cwd?: string }): Promise<CliResult> {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: input?.cwd ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** Runs a client command that must succeed and print one JSON document. */
export async function cliJson<T>(args: readonly string[], env: NodeJS.ProcessEnv): Promise<T> {
  // Before a `--`: what follows it is the program's own arguments.
  const dash = args.indexOf('--');
  const result = await cli(dash === -1 ? [...args, '--json'] : [...args.slice(0, dash), '--json', ...args.slice(dash)], env);
  if (result.code !== 0) throw new Error(`shuma ${args.join(' ')} exited ${result.code}: ${result.stderr}${result.stdout}`);
  return JSON.parse(result.stdout) as T;
}

/** A client command that keeps running (logs -f, stats -w, top): its lines as they come. */
export function cliStream(args: readonly string[], env: NodeJS.ProcessEnv): Lines & { child: ChildProcess } {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  return { ...follow(child), child };
}

/**
 * Polls a client command until `predicate` holds, one call at a time (a call that is still
 * running when the test moves on would fail against a stopped daemon).
 */
export async function pollCli<T>(read: () => Promise<T>, predicate: (value: T) => boolean, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (predicate(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

export async function waitAllGone(pids: readonly number[]): Promise<void> {
  await pollUntil(() => pids.filter(isAlive), (alive) => alive.length === 0, `processes ${pids.join(', ')} to be gone`, 20);
}

export function socketExists(socket: string): boolean {
  return existsSync(socket);
}
