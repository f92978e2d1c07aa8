import { spawn } from 'node:child_process';
import { ShumaError } from '../../../protocol/errors.js';
import { slurmEnv, type SlurmAnswer, type SlurmCluster } from './slurm-cli.js';

// salloc, watched as it goes: a create answers as soon as salloc's command reported the job,
// not once salloc has ended. It is started in the runtime's own session, with child_process, not
// by the spawners (which start every command in a session of its own): so started, salloc took
// longer from its start to its command's report (medians of 20, sides in turn, load ~11:
// 17.2-17.7 ms in a session of its own, 10.2-12.8 ms in ours).

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
}

export function startSalloc(cluster: SlurmCluster, args: readonly string[], options: SallocOptions): Promise<SallocProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn('salloc', args, { env: slurmEnv(cluster), stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    let exited = false;
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      options.onStderr(stderr);
    });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const kill = () => {
      if (!exited) child.kill('SIGKILL');
    };
    const timer = setTimeout(kill, options.timeoutMs);
    const ended = new Promise<SlurmAnswer & { signal: NodeJS.Signals | null }>((settle) =>
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        settle({ code, signal, stdout, stderr });
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
