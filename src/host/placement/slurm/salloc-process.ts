import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { ShumaError } from '../../../protocol/errors.js';
import { resolveExecutable } from '../../spawn/spawn-check.js';
import type { Spawner } from '../../spawn/spawner.js';
import { slurmEnv, type SlurmAnswer, type SlurmCluster } from './slurm-cli.js';

// salloc, watched as it goes: a create answers as soon as salloc's command reported the job,
// not once salloc has ended. salloc stays in the runtime's own session: in a session of its own
// it took longer from its start to its command's report (medians of 20, sides in turn, load
// ~11: 17.2-17.7 ms in a session of its own, 10.2-12.8 ms in ours; a session is a scheduling
// autogroup of its own). So it is started by the addon's spawner, whose children lead a process
// group in the runtime's session (clone+vfork on a thread of the addon's: the event loop is not
// held by a fork of the runtime), or else by child_process, never detached; not by the
// child_process spawner, whose children lead a session of their own.

/** The addon's spawner, and salloc's path (its spawns take an absolute path). */
export interface SallocSpawner {
  spawner: Spawner;
  file: string;
}

let sallocPath: Promise<string | null> | null = null;

/** The addon's spawner and salloc's path, when the runtime spawns with the addon (see above). */
export async function sallocSpawnerOf(spawner: Spawner): Promise<SallocSpawner | undefined> {
  if (!spawner.actsAhead) return undefined;
  sallocPath ??= resolveExecutable('salloc', '/', process.env.PATH ?? '/usr/bin:/bin').catch(() => null);
  const file = await sallocPath;
  return file ? { spawner, file } : undefined;
}

let devNullFd: number | null = null;

/**
 * salloc's stdout: /dev/null, opened once. Neither salloc nor its reporting command says
 * anything there (salloc writes to stderr), and a pipe would cost every create one more pipe,
 * stream and end to wait for.
 */
function devNull(): number {
  devNullFd ??= openSync('/dev/null', 'w');
  return devNullFd;
}

export interface SallocProcess {
  /** Everything salloc said on stderr so far. */
  said(): string;
  /** salloc and its command ended, their output read: Slurm's answer and how salloc ended. */
  readonly ended: Promise<SlurmAnswer & { signal: NodeJS.Signals | null }>;
  /** Ends salloc now (SIGKILL), unless it already ended. */
  kill(): void;
}

export interface SallocOptions {
  /** Killed after this long. */
  timeoutMs: number;
  /** All salloc said so far, each time it says more. */
  onStderr(said: string): void;
  spawner?: SallocSpawner;
  /** Called once salloc's start is asked for: after the addon's spawn request, before a fork of this process. */
  asked?: () => void;
}

export function startSalloc(cluster: SlurmCluster, args: readonly string[], options: SallocOptions): Promise<SallocProcess> {
  if (options.spawner) return startByAddon(options.spawner, cluster, args, options);
  options.asked?.();
  return new Promise((resolve, reject) => {
    const child = spawn('salloc', args, { env: slurmEnv(cluster), stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    let exited = false;
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      options.onStderr(stderr);
    });
    const kill = () => {
      if (!exited) child.kill('SIGKILL');
    };
    const timer = setTimeout(kill, options.timeoutMs);
    const ended = new Promise<SlurmAnswer & { signal: NodeJS.Signals | null }>((settle) =>
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        settle({ code, signal, stdout: '', stderr });
      }),
    );
    child.once('exit', () => (exited = true));
    child.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        error.code === 'ENOENT'
          ? new ShumaError(
              'PLACEMENT_UNAVAILABLE',
              "salloc was not found on PATH: install Slurm's client programs (Debian: apt-get install slurm-client) or place the workspace locally",
              { cause: 'ENOENT' },
            )
          : new ShumaError('PLACEMENT_UNAVAILABLE', `salloc could not be started: ${error.message}`),
      );
    });
    child.once('spawn', () => resolve({ said: () => stderr, ended, kill }));
  });
}

async function startByAddon({ spawner, file }: SallocSpawner, cluster: SlurmCluster, args: readonly string[], options: SallocOptions): Promise<SallocProcess> {
  const starting = spawner.spawn({ file, argv0: 'salloc', args, env: slurmEnv(cluster), cwd: process.cwd(), stdio: { stdout: devNull() } });
  options.asked?.();
  const child = await starting.catch((error: unknown) => {
    throw new ShumaError('PLACEMENT_UNAVAILABLE', `salloc could not be started: ${(error as Error).message}`);
  });
  let stderr = '';
  let exited = false;
  const errText = new StringDecoder('utf8');
  // A chunk is valid during the listener's call only (the addon reuses its buffers): decoded at once.
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += errText.write(chunk);
    options.onStderr(stderr);
  });
  const kill = () => {
    if (exited) return;
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // Already gone: its exit is on its way.
    }
  };
  const timer = setTimeout(kill, options.timeoutMs);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((settle) =>
    child.onExit((code, signal) => {
      exited = true;
      settle({ code, signal });
    }),
  );
  const outputEnd = new Promise<void>((settle) => child.onOutputEnd(settle));
  const ended = Promise.all([exit, outputEnd]).then(([{ code, signal }]) => {
    clearTimeout(timer);
    return { code, signal, stdout: '', stderr };
  });
  return { said: () => stderr, ended, kill };
}
