import type { Readable, Writable } from 'node:stream';
import type { ResourceLimits } from '../../protocol/specs.js';

// The one door through which the host starts processes: the native spawner (clone+exec in an
// addon, see docs/architecture.md § Spawning) or, where it cannot load, child_process.

export interface SpawnOrder {
  /** Absolute path of the program, already resolved and checked. */
  file: string;
  /** argv[0] as the user wrote it. */
  argv0: string;
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  cwd: string;
  /**
   * File descriptors to hand to the child as its stdin, stdout or stderr (a pipe end). Absent:
   * stdin is /dev/null, stdout and stderr are captured through pipes of the runtime's own.
   */
  stdio?: { stdin?: number | 'pipe'; stdout?: number; stderr?: number };
  /** Set soft and hard before the program runs. Only a spawner that `appliesLimits` is given them. */
  limits?: ResourceLimits;
  /** cgroup.procs files the child writes its pid to before the program runs (same condition). */
  cgroupProcsFiles?: readonly string[];
  /**
   * The child is SIGKILLed by the kernel when the runtime dies, however it dies
   * (PR_SET_PDEATHSIG; see docs/reliability.md). Only a spawner that `appliesLimits` is given it;
   * for the others the launcher wraps the order in `setpriv --pdeathsig KILL`.
   */
  dieWithRuntime?: boolean;
  /**
   * The child leads a session of its own, hence a scheduling autogroup of its own (a command
   * alone); absent, the native spawner keeps it in the runtime's session (a pipeline's stages,
   * salloc). child_process always makes a session (`detached`). docs/architecture.md § Processes.
   */
  ownSession?: boolean;
  /**
   * Set when `file` is a wrapper (setpriv, prlimit, sh) that will exec the user's program: the
   * program, whose failure to start the wrapper could only report as an exit status.
   */
  wrapped?: { file: string; argv0: string };
}

export interface SpawnedProcess {
  readonly pid: number;
  /** Present when the order asked for stdin 'pipe' (a tapped pipeline feeds it). */
  readonly stdin: Writable | null;
  /**
   * Null when the order handed the child a descriptor of its own for that stream. The caller
   * reads them (the host always does): until both have been read to their end, onOutputEnd waits.
   * A 'data' chunk may be a view of a buffer the spawner reuses for its next read (the native
   * spawner's are: no allocation per read): it is valid during the listener's call only — copy
   * what you keep.
   */
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /**
   * Reads `stream` straight into `ring` (no copy) whenever it offers a region, else writes each
   * read to it: the caller does not write the ring itself. 'data' listeners still hear every
   * read. Absent where the spawner cannot (child_process): the caller writes the ring on 'data'.
   * `onError`: a read that failed (the stream closes after it); the stream itself may never be
   * made (an output that ends empty needs none), so it is given here, not as an 'error' listener.
   */
  captureInto?(stream: 'stdout' | 'stderr', ring: CaptureRing, onError?: (error: Error) => void): void;
  /** Where it runs when that is not this machine: a Slurm node (the pid is then srun's). */
  readonly node?: string;
  /**
   * The leader's exit: the run's state. Output may still be arriving. `reason` is what a
   * placement knows beyond the status (a Slurm step's OOM kill, its node lost). A listener
   * added after the exit still hears it, once, but never during the call that adds it (as
   * onOutputEnd's): an exit is never lost to a late listener.
   */
  onExit(listener: (code: number | null, signal: NodeJS.Signals | null, reason?: 'oom' | 'node-lost') => void): void;
  /** Every holder of the output pipes has closed them: no more output will come. */
  onOutputEnd(listener: () => void): void;
  /**
   * A run started at its predecessor's exit on the spawner's own thread (armRelaunch): when
   * that thread woke for the exit, when it had reaped it and when the child had exec'd
   * (CLOCK_MONOTONIC ms, as `process.hrtime`), all before the loop heard any.
   */
  readonly startedOnExit?: { exitWokeAt: number; exitSeenAt: number; execedAt: number };
}

/** A log ring as a read target (processes/log-ring.ts). */
export interface CaptureRing {
  readonly capacity: number;
  region(): Buffer | null;
  commit(bytes: number): void;
  write(chunk: Buffer): void;
  /** A flood's newest bytes kept by the addon meanwhile (spawn/flood-capture.ts). */
  keepOutside(pull: (() => void) | null): void;
  absorb(last: Buffer, taken: number): void;
}

export interface Spawner {
  readonly name: string;
  /**
   * Sets `order.limits` and joins `order.cgroupProcsFiles` in the child itself. When false,
   * the launcher wraps the order in a shell prologue and prlimit instead (launcher.ts).
   */
  readonly appliesLimits: boolean;
  /**
   * Whether the host may start runs ahead of their actors' requests (standing orders, first runs
   * ahead: main-actors/standing-orders.ts). That pays when a spawn barely holds the event loop,
   * so it overlaps the actor's round trip; a fork of the runtime (child_process) holds it for
   * milliseconds, which delays the very messages it would overlap. Absent: no.
   */
  readonly actsAhead?: boolean;
  /**
   * Starts the program as the leader of a new process group, so a signal to the group
   * reaches its descendants (a session of its own when the order asks for one and always with
   * child_process, else in the runtime's session; without a controlling terminal either way). Rejects with a ShumaError('SPAWN_FAILED').
   */
  spawn(order: SpawnOrder): Promise<SpawnedProcess>;
  /**
   * A standing order's relaunch started by the spawner itself, off the loop, the moment the run
   * `pid` exits — when `always`, or the run failed — so a restart waits for no thread of the
   * runtime's (native spawner: native/relaunch.c). False: not armed; the host relaunches as
   * before. The host takes the run with relaunched(pid) while that exit is told to it (the run
   * is then the host's as any spawn's); one not taken then is killed, never told.
   */
  armRelaunch?(pid: number, order: SpawnOrder, always: boolean): boolean;
  /** Nothing is started at `pid`'s exit any more (a stop, a revoked order). */
  disarmRelaunch?(pid: number): void;
  /** The run started at `pid`'s exit (or its refusal); undefined when none was. */
  relaunched?(pid: number): Promise<SpawnedProcess> | undefined;
  /**
   * The process is exiting without a shutdown (core/shutdown.ts killEverythingNow): nothing
   * starts any more, and a run the spawner started that nobody was told of (a relaunch at an
   * exit the loop has not heard, a spawn not yet settled) is killed with its process group.
   */
  stopSpawning?(): void;
}
