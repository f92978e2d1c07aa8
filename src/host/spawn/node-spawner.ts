import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readSync } from 'node:fs';
import { ShumaError } from '../../protocol/errors.js';
import { ExitLatch } from './exit-latch.js';
import type { SpawnedProcess, SpawnOrder, Spawner } from './spawner.js';

/** The spawner built on `child_process.spawn` (a fork(), whose cost grows with our RSS). */
export class NodeSpawner implements Spawner {
  readonly name = 'node';
  readonly appliesLimits = false;

  spawn(order: SpawnOrder): Promise<SpawnedProcess> {
    return new Promise((resolve, reject) => {
      // A wrapper would exec the program itself and could only exit 127 when that fails: the
      // failure it would meet is found here, so that it is a spawn failure, as without wrapper.
      const problem = order.wrapped ? programProblem(order.wrapped.file) : null;
      if (problem) {
        reject(spawnError(order.wrapped!, problem));
        return;
      }
      let child;
      try {
        child = spawn(order.file, order.args, {
          argv0: order.argv0,
          cwd: order.cwd,
          env: order.env,
          detached: true,
          stdio: [order.stdio?.stdin ?? 'ignore', order.stdio?.stdout ?? 'pipe', order.stdio?.stderr ?? 'pipe'],
        });
      } catch (error) {
        // E2BIG and friends are thrown synchronously.
        reject(spawnError(order, error));
        return;
      }
      const spawned = child;
      // Listened to from the start: child_process tells 'exit' and 'close' only to the listeners
      // it has then, and the caller's may come turns of the loop later.
      const exit = new ExitLatch();
      spawned.once('exit', (code, signal) => exit.settle(code, signal));
      const outputEnd = new Promise<void>((resolve) => spawned.once('close', () => resolve()));
      spawned.once('error', (error) => reject(spawnError(order, error)));
      spawned.once('spawn', () => {
        resolve({
          pid: spawned.pid!,
          stdin: spawned.stdin,
          stdout: spawned.stdout,
          stderr: spawned.stderr,
          onExit: (listener) => exit.listen(listener),
          onOutputEnd: (listener) => void outputEnd.then(listener),
        });
      });
    });
  }
}

const scratch = Buffer.alloc(256);

/** Why exec of `file` would fail (ENOENT, EACCES…, its #! interpreter's included), or null. */
function programProblem(file: string): { code: string; message: string } | null {
  let fd: number;
  try {
    accessSync(file, constants.X_OK);
    fd = openSync(file, 'r');
  } catch (error) {
    return { code: (error as NodeJS.ErrnoException).code ?? 'EUNKNOWN', message: (error as Error).message };
  }
  let n: number;
  try {
    n = readSync(fd, scratch, 0, scratch.length, 0);
  } catch {
    return null; // unreadable but executable: exec decides
  } finally {
    closeSync(fd);
  }
  if (n < 2 || scratch[0] !== 0x23 || scratch[1] !== 0x21) return null;
  const line = scratch.toString('latin1', 2, n).split('\n')[0]!.trim();
  const interpreter = line.split(/[ \t]/)[0] ?? '';
  if (!interpreter.startsWith('/')) return null; // relative to the child's cwd: exec decides
  try {
    accessSync(interpreter, constants.X_OK);
    return null;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
    return { code, message: `its #! interpreter ${interpreter}: ${code}` };
  }
}

/** Resources of the runtime's own that a spawn needs (descriptors for its pipes, memory, a pid). */
const EXHAUSTION_HINTS: Readonly<Record<string, string>> = {
  EMFILE:
    "the runtime is out of file descriptors (each command holds 2-3, more while it starts): raise its limit (RLIMIT_NOFILE: `ulimit -n`, systemd's LimitNOFILE=) or run fewer commands at once",
  ENFILE: 'the system-wide table of open files is full: raise fs.file-max (sysctl) or close files elsewhere',
  EAGAIN: 'the kernel refused a new process (RLIMIT_NPROC of this user, kernel.pid_max or threads-max reached): raise the limit or run fewer processes',
  ENOMEM: 'out of memory for a new process: free memory or lower the runtime\'s own size',
};

/** Whether a spawn failed for lack of something the runtime itself holds, not the program. */
export function isExhaustion(cause: string): boolean {
  return Object.hasOwn(EXHAUSTION_HINTS, cause);
}

/** A failed spawn as the user sees it: the OS code and how to fix it. */
export function spawnError(order: Pick<SpawnOrder, 'argv0'>, error: unknown): ShumaError {
  const code = (error as { code?: unknown }).code;
  const cause = typeof code === 'string' ? code : 'EUNKNOWN';
  const hint =
    cause === 'E2BIG'
      ? 'the arguments and environment are too large for the kernel: pass data through a file or stdin'
      : cause === 'ENOENT'
        ? 'the program or its interpreter (#! line) was not found'
        : cause === 'EACCES'
          ? 'permission denied: check the mode of the program and its directories'
          : (EXHAUSTION_HINTS[cause] ?? (error as Error).message);
  return new ShumaError('SPAWN_FAILED', `could not start '${order.argv0}' (${cause}): ${hint}`, { cause });
}
