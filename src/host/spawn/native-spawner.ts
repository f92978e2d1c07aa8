import { Socket } from 'node:net';
import { constants } from 'node:os';
import type { Writable } from 'node:stream';
import { ShumaError } from '../../protocol/errors.js';
import { signalThrough } from '../processes/signals.js';
import { CapturedOutput } from './captured-output.js';
import { ExitLatch } from './exit-latch.js';
import { rlimitValues } from './launcher.js';
import { loadSpawnerAddon, type EnvBlockHandle, type NativeChild, type SpawnArguments, type SpawnerAddon } from './native-addon.js';
import { isExhaustion, spawnError } from './node-spawner.js';
import type { SpawnedProcess, SpawnOrder, Spawner } from './spawner.js';

// Spawns through the addon: clone(CLONE_VM|CLONE_VFORK) + exec, rlimits and cgroup joined in
// the child, the exit told by a pidfd. Nothing of the runtime's memory is copied, so a spawn
// costs the same at 50 MB as at 1 GB; the clone runs on a thread of the addon's, so the
// event loop only converts the arguments (~0.04 ms).

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(
  Object.entries(constants.signals).map(([name, number]) => [number, name as NodeJS.Signals]),
);

/** The spawner built on the native addon; see docs/architecture.md § Spawning. */
export class NativeSpawner implements Spawner {
  readonly name = 'native';
  readonly appliesLimits = true;
  readonly actsAhead = true;
  /**
   * A command's environment is one object for all its runs (and a workspace's, for all its
   * commands that add nothing to it): its `K=V` strings are made, and checked, once, and made
   * into the addon's block once (the C strings every spawn of it shares).
   */
  private readonly envpOf = new WeakMap<Readonly<Record<string, string>>, readonly string[] | EnvBlockHandle>();
  /** Relaunches armed, by the pid whose exit starts them (armRelaunch). */
  private readonly relaunches = new Map<number, Relaunch>();

  constructor(readonly addon: SpawnerAddon = loadSpawnerAddon()) {
    if (addon.kill) signalThrough(addon.kill);
  }

  async spawn(order: SpawnOrder): Promise<SpawnedProcess> {
    const exit = new ChildExit();
    const args = this.argumentsOf(order, exit);
    let child;
    try {
      child = await this.addon.spawnAsync(...args);
    } catch (error) {
      throw nativeSpawnError(order, error);
    }
    return this.spawned(child, exit);
  }

  /**
   * Arms the relaunch at `pid`'s exit (standing-orders.ts): started on the addon's relaunch thread
   * as the exit is seen there (native/relaunch.c), handed to the host by relaunched(pid) as it
   * decides the relaunch, or killed if it does not as that exit is told.
   */
  armRelaunch(pid: number, order: SpawnOrder, always: boolean): boolean {
    const { addon } = this;
    if (!addon.armRelaunch || this.relaunches.has(pid)) return false;
    const exit = new ChildExit();
    const relaunch: Relaunch = { outcome: undefined };
    try {
      const [file, argv, envp, cwd, stdio, limits, cgroups, onExit, dieWithParent, ownSession] = this.argumentsOf(order, exit);
      const armed = addon.armRelaunch(file, argv, envp, cwd, stdio, limits, cgroups, onExit, dieWithParent ?? false, ownSession ?? false, pid, always, (error, child, [exitSeenAt, execedAt, exitWokeAt]) => {
        if (error) relaunch.outcome = nativeSpawnError(order, error);
        else relaunch.outcome = child ? this.spawned(child, exit, { exitWokeAt, exitSeenAt, execedAt }) : null;
      });
      if (armed) this.relaunches.set(pid, relaunch);
      return armed;
    } catch {
      // Not armed (a NUL byte, out of descriptors): the relaunch takes the ordinary way, which says why.
      return false;
    }
  }

  /** Nothing starts at `pid`'s exit any more; one already under way is killed unless taken. */
  disarmRelaunch(pid: number): void {
    if (this.relaunches.get(pid)?.outcome === undefined && this.addon.disarmRelaunch?.(pid)) this.relaunches.delete(pid);
  }

  /** The run started at `pid`'s exit, if one was: only while that exit is being told. */
  relaunched(pid: number): Promise<SpawnedProcess> | undefined {
    const relaunch = this.relaunches.get(pid);
    if (!relaunch || relaunch.outcome === undefined) return undefined;
    this.relaunches.delete(pid);
    const { outcome } = relaunch;
    if (outcome === null) return undefined;
    return outcome instanceof ShumaError ? Promise.reject(outcome) : Promise.resolve(outcome);
  }

  stopSpawning(): void {
    this.addon.stopSpawning?.();
  }

  /** The addon's arguments for `order`; the exit goes to `exit`. Throws a ShumaError for a NUL byte. */
  private argumentsOf(order: SpawnOrder, exit: ChildExit): SpawnArguments {
    const { addon } = this;
    let envp = this.envpOf.get(order.env);
    if (!envp) {
      const strings = Object.entries(order.env).map(([key, value]) => `${key}=${value}`);
      // An environment is checked once, before it is kept.
      refuseNulBytes(order, strings);
      envp = addon.envBlock?.(strings) ?? strings;
      this.envpOf.set(order.env, envp);
    } else {
      refuseNulBytes(order, []);
    }
    const stdio = order.stdio;
    const stdin = stdio?.stdin === 'pipe' ? addon.STDIO_PIPE : (stdio?.stdin ?? addon.STDIO_NULL);
    return [
      order.file,
      [order.argv0, ...order.args],
      envp,
      order.cwd,
      [stdin, stdio?.stdout ?? addon.STDIO_PIPE, stdio?.stderr ?? addon.STDIO_PIPE],
      rlimitValues(order.limits),
      order.cgroupProcsFiles ?? [],
      (code, signo) => this.exited(exit, code, signo),
      order.dieWithRuntime ?? false,
      order.ownSession ?? false,
    ];
  }

  private exited(exit: ChildExit, code: number | null, signo: number | null): void {
    exit.settle(code, signo === null ? null : (SIGNAL_NAMES.get(signo) ?? null));
    // A run started at this exit that the host did not take as the exit was told: nobody ever will.
    const untaken = exit.pid === undefined ? undefined : this.relaunches.get(exit.pid);
    if (!untaken || untaken.outcome === undefined) return;
    this.relaunches.delete(exit.pid!);
    if (untaken.outcome && !(untaken.outcome instanceof ShumaError)) dropRelaunch(untaken.outcome);
  }

  private spawned(child: NativeChild, exit: ChildExit, startedOnExit?: SpawnedProcess['startedOnExit']): SpawnedProcess {
    const { addon } = this;
    exit.pid = child.pid;
    const outputs = {
      stdout: child.stdout >= 0 ? new CapturedOutput(child.stdout, addon) : null,
      stderr: child.stderr >= 0 ? new CapturedOutput(child.stderr, addon) : null,
    };
    const stdin = child.stdin >= 0 ? writableEnd(child.stdin) : null;
    const outputEnd = closedAll([outputs.stdout, outputs.stderr]);
    // The output streams are made when first asked for (captured-output.ts): getters, never spread.
    return {
      pid: child.pid,
      stdin,
      get stdout() {
        return outputs.stdout?.stream ?? null;
      },
      get stderr() {
        return outputs.stderr?.stream ?? null;
      },
      captureInto: (stream, ring, onError) => outputs[stream]?.captureInto(ring, onError),
      onExit: (listener) => exit.listen(listener),
      onOutputEnd: (listener) => void outputEnd.then(listener),
      ...(startedOnExit ? { startedOnExit } : {}),
    };
  }
}

/** A relaunch armed at an exit: its outcome once the addon told it (null: nothing was started). */
interface Relaunch {
  outcome: SpawnedProcess | ShumaError | null | undefined;
}

/** A run started at an exit that nobody took: killed (its exit is watched still, and reaped), its pipes closed. */
function dropRelaunch(child: SpawnedProcess): void {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
  for (const stream of [child.stdin, child.stdout, child.stderr]) stream?.destroy();
}

/** The exit latch of a child of the addon, which knows its pid once the child exists (a relaunch armed at its exit is found by it). */
class ChildExit extends ExitLatch {
  pid: number | undefined;
}

function writableEnd(fd: number): Writable {
  return new Socket({ fd, readable: false, writable: true });
}

/** Resolves once every output is closed: every holder of the write ends has let go. */
function closedAll(outputs: readonly (CapturedOutput | null)[]): Promise<void> {
  return Promise.all(outputs.map((output) => (output === null ? undefined : new Promise<void>((resolve) => output.onClosed(resolve))))).then(() => undefined);
}

/** C strings end at NUL: a NUL inside an argument would silently cut it (child_process refuses too). */
function refuseNulBytes(order: SpawnOrder, envp: readonly string[]): void {
  const hasNul = (s: string) => s.includes('\0');
  if (hasNul(order.file) || hasNul(order.argv0) || hasNul(order.cwd) || order.args.some(hasNul) || envp.some(hasNul)) {
    throw new ShumaError('SPAWN_FAILED', `could not start '${order.argv0}' (EINVAL): an argument or an environment variable holds a NUL byte`, {
      cause: 'EINVAL',
    });
  }
}

/** The addon's failure (errno name + step) in child_process's words, so both spawners say the same. */
function nativeSpawnError(order: SpawnOrder, error: unknown): ShumaError {
  const { code, step, index } = error as { code?: string; step?: string; index?: number };
  const cause = code ?? 'EUNKNOWN';
  // Out of descriptors, memory or pids at any step: the runtime's limit, not the command's fault.
  if (isExhaustion(cause) && step !== 'rlimit') return spawnError(order, error);
  if (step === 'chdir') {
    return new ShumaError(
      'SPAWN_FAILED',
      `could not start '${order.argv0}' (${cause}): the working directory '${order.cwd}' does not exist or cannot be entered: create it or pick another working directory`,
      { cause, field: 'cwd' },
    );
  }
  if (step === 'cgroup') {
    const file = order.cgroupProcsFiles?.[index ?? 0] ?? '?';
    return new ShumaError('SPAWN_FAILED', `could not start '${order.argv0}' (${cause}): could not join cgroup (${file}): was it removed, or is it not delegated to this user?`, { cause });
  }
  if (step === 'rlimit') {
    return new ShumaError('SPAWN_FAILED', `could not start '${order.argv0}' (${cause}): a resource limit could not be set (${JSON.stringify(order.limits)}): a hard limit cannot be raised without privilege`, { cause });
  }
  if (step === 'exec') return spawnError(order, error);
  return new ShumaError('SPAWN_FAILED', `could not start '${order.argv0}' (${cause}): ${(error as Error).message}`, { cause });
}
