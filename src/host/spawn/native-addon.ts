import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// The compiled addon (native/*.c, built by node-gyp at `npm ci` into build/Release), typed.
// This file is dist/src/host/native-addon.js once built: the package root is three levels up.

/** The parent's ends of the pipes the addon made, -1 where the child got something else. */
export interface NativeChild {
  pid: number;
  stdin: number;
  stdout: number;
  stderr: number;
}

export type SpawnArguments = [
  file: string,
  argv: readonly string[],
  /** `K=V` strings, or the block envBlock made of them. */
  envp: readonly string[] | EnvBlockHandle,
  cwd: string,
  stdio: readonly [number, number, number],
  limits: readonly [number, number, number, number],
  cgroupProcs: readonly string[],
  onExit: (code: number | null, signo: number | null) => void,
  /** PR_SET_PDEATHSIG(SIGKILL) in the child: it dies when the thread that cloned it exits. */
  dieWithParent?: boolean,
  /** setsid in the child (a session, so a scheduling autogroup, of its own); else setpgid in ours. */
  ownSession?: boolean,
];

/** An environment's strings, converted once for every spawn given it (an opaque external). */
export type EnvBlockHandle = { readonly __envBlock: unique symbol };

/** A native capture ring (an opaque external). */
export type CaptureHandle = { readonly __capture: unique symbol };

/** A watch of a child's output pipe before any stream reads it (an opaque external). */
export type OutputWatchHandle = { readonly __outputWatch: unique symbol };

/** A native edge pump (an opaque external). */
export type PumpHandle = { readonly __pump: unique symbol };

export interface SpawnerAddon {
  /**
   * Starts `file` (clone + exec) on the addon's spawner thread, so the event loop is not held
   * while the child execs, and calls `onExit(code, signo)` once it has exited and been reaped.
   * Rejects with an Error whose `code` is the errno name and `step` the stage that failed
   * (`exec`, `chdir`, `cgroup` with `index` the file, `rlimit`, `stdio`, `clone`…).
   */
  spawnAsync(...args: SpawnArguments): Promise<NativeChild>;
  /**
   * Arms a relaunch (native/relaunch.c): the child `afterPid`'s exit is watched on a thread of
   * the addon's instead of the loop, and when it comes (`always`, or a failure) that thread
   * starts the spawn these arguments describe there and then. The loop hears after the fact:
   * `onRelaunched(error, child, [reapedAt, execedAt, wokeAt])` (CLOCK_MONOTONIC ms; wokeAt: the
   * thread woken for the exit, before its reap; execedAt null when nothing was started: a
   * success, `always` false), then `afterPid`'s own onExit. False: no
   * child `afterPid` is watched (its exit is on its way already); nothing was armed.
   * Absent from an addon built before it.
   */
  armRelaunch?(
    ...args: [...Required<SpawnArguments>, afterPid: number, always: boolean, onRelaunched: (error: Error | null, child: NativeChild | null, at: [number, number, number]) => void]
  ): boolean;
  /** True: nothing starts at `afterPid`'s exit any more, the loop watches it again. False: nothing was armed, or its onRelaunched is on its way. */
  disarmRelaunch?(afterPid: number): boolean;
  /**
   * The process's last moment (process.exit runs no cleanup hook): the spawner and relaunch
   * threads stop, and every run they started that was not told to the loop is killed with its
   * process group. A later spawn starts them again. Absent from an addon built before it.
   */
  stopSpawning?(): void;
  /** The same on the calling thread, which waits for the exec (~0.2 ms): for the benchmark. */
  spawn(...args: SpawnArguments): NativeChild;
  /** kill(2): 0, or its errno (ESRCH: nothing to signal), never thrown. Absent from an addon built before it. */
  kill?(pid: number, signo: number): number;
  /** The pid, uid and gid of the peer of a connected unix socket (SO_PEERCRED); throws with `code` on failure. */
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
  /**
   * Pumps a tapped pipeline's edge in C on a thread of its own (on the loop's thread when 32
   * edges have one already; native/flow-pump.c): the bytes of
   * `sourceFd` go to every `sinkFds` pipe (splice(2) for one, a copy for a fan-out) without
   * entering JavaScript. Owns the descriptors. `onEnd` once the source ended or no reader is left
   * (never during this call). `tapFds[i]`: sink i's tap (see pumpTap) from the first byte, -1 none.
   * `tapsOnThread`: the taps are read by a thread too (a flow fanout): a tapped edge keeps its thread.
   * Absent from an addon built before it: the JS pump is used.
   */
  pumpStart?(sourceFd: number, sinkFds: readonly number[], onEnd: () => void, tapFds?: readonly number[], tapsOnThread?: boolean): PumpHandle;
  /** Bytes handed to each sink so far. */
  pumpBytes?(pump: PumpHandle): number[];
  /** A copy of sink i's bytes also goes to `fd` (a pipe's write end, owned from then on); -1 ends it. False once the pump ended. `onThread`: as pumpStart's tapsOnThread. */
  pumpTap?(pump: PumpHandle, sink: number, fd: number, onThread?: boolean): boolean;
  /** Closes every descriptor of the pump now; onEnd is not called. */
  pumpDestroy?(pump: PumpHandle): void;
  /** Edges pumped on a thread of their own now (all runtimes of the process). */
  pumpThreads?(): number;
  /** Asks for a 1 MiB pipe (a fast writer wakes its reader 16 times less); its size after (unchanged when refused). */
  growPipe?(fd: number): number;
  /** A new pipe, both ends close-on-exec: [readFd, writeFd]. */
  pipe?(): [number, number];
  /**
   * Takes the pipe `fd` on a thread of the addon's (native/capture-ring.c) into a ring of its
   * last `capacity` bytes (splice(2), nothing copied): the loop is not woken by the writer.
   * Reads a duplicate: `fd` must not be read until captureStop. Null when it cannot (no pipe of
   * `capacity` bytes, no memory, no thread, 32 floods taken so already). `onEnd` once every
   * writer is gone (never during this call).
   */
  captureStart?(fd: number, capacity: number, onEnd: () => void): CaptureHandle | null;
  /** [the newest bytes kept since the last drain (≤ capacity), how many were read in that time]; reads what waits first. */
  captureDrain?(ring: CaptureHandle): [Buffer, number];
  /** The last drain; closes the ring (onEnd is not called): `fd` may be read again. */
  captureStop?(ring: CaptureHandle): [Buffer, number];
  /**
   * Watches a child's output pipe `fd` on the loop until its first news (native/output-watch.c):
   * `onReady(true)` once every writer is gone and nothing was written, `onReady(false)` once there
   * is something to read; the watch has ended before either call (a stream may read `fd` then).
   * Never called during this call. Absent from an addon built before it.
   */
  /** The environment's strings as a block spawns take in place of the array. Absent from an addon built before it. */
  envBlock?(envp: readonly string[]): EnvBlockHandle;
  outputWatch?(fd: number, onReady: (ended: boolean) => void): OutputWatchHandle;
  /** Ends the watch now (`fd` is free for a stream); false when it had ended already. */
  outputUnwatch?(watch: OutputWatchHandle): boolean;
  /** stdio values: /dev/null, or a new pipe whose parent end is returned. */
  readonly STDIO_NULL: number;
  readonly STDIO_PIPE: number;
}

export const ADDON_PATH = fileURLToPath(new URL('../../../../build/Release/shuma_spawner.node', import.meta.url));

/** Loads the addon; throws an Error saying why it cannot be used. */
export function loadSpawnerAddon(): SpawnerAddon {
  if (process.platform !== 'linux') throw new Error(`the native spawner is for Linux (this is ${process.platform})`);
  if (!existsSync(ADDON_PATH)) {
    throw new Error(`${ADDON_PATH} was not built (node-gyp at install time failed or was skipped): run 'npm rebuild shuma' with a C compiler and Node's headers`);
  }
  return createRequire(import.meta.url)(ADDON_PATH) as SpawnerAddon;
}
