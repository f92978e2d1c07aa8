import type { ResourceLimits } from '../../protocol/specs.js';
import type { SpawnOrder } from './spawner.js';

// What must hold before the user's program runs — resource limits, membership of the
// workspace's cgroup — is done in the child, between fork and exec. The native spawner does
// it itself; for child_process, which offers no hook there, a two-line shell prologue and
// util-linux's prlimit do it, at the price of two more execs.

/**
 * Joins each cgroup (its own pid into each cgroup.procs), then execs the rest. A failure to
 * join ends the child with 126 and says why on stderr, before the program ever starts.
 */
const JOIN_CGROUPS = 'while [ "$1" != -- ]; do echo $$ > "$1" || { echo "shuma: could not join cgroup ($1)" >&2; exit 126; }; shift; done; shift; exec "$@"';

export interface LaunchWrapping {
  /** Absolute path of prlimit, when the machine has it; limits are not applied without it. */
  prlimit: string | null;
  /** Absolute path of util-linux's setpriv, which sets the parent-death signal for child_process. */
  setpriv: string | null;
  /** The child must die with the runtime (there is no state for its orphans to be adopted from). */
  dieWithRuntime: boolean;
  limits: ResourceLimits | undefined;
  cgroupProcsFiles: readonly string[];
}

/** prlimit's options for the limits asked: soft and hard alike, so the program cannot raise them. */
export function prlimitArgs(limits: ResourceLimits | undefined): string[] {
  if (!limits) return [];
  const args: string[] = [];
  // RLIMIT_AS bounds address space: allocations fail with ENOMEM; it is not an OOM kill.
  if (limits.memoryBytes !== undefined) args.push(`--as=${limits.memoryBytes}`);
  if (limits.nofile !== undefined) args.push(`--nofile=${limits.nofile}`);
  if (limits.cpuSeconds !== undefined) args.push(`--cpu=${limits.cpuSeconds}`);
  // RLIMIT_NPROC counts the user's processes, and the kernel does not apply it to root.
  if (limits.nproc !== undefined) args.push(`--nproc=${limits.nproc}`);
  return args;
}

/**
 * The rlimits asked, in the native spawner's order (RLIMIT_AS, NOFILE, CPU, NPROC), -1 for
 * "leave as is": the same fields, with the same meaning, as prlimitArgs.
 */
export function rlimitValues(limits: ResourceLimits | undefined): [number, number, number, number] {
  return [limits?.memoryBytes ?? -1, limits?.nofile ?? -1, limits?.cpuSeconds ?? -1, limits?.nproc ?? -1];
}

/** The order a spawner gets: limits and cgroups as fields for one that applies them, else wrapped. */
export function launchOrder(order: SpawnOrder, wrapping: LaunchWrapping, appliesLimits: boolean): SpawnOrder {
  if (!appliesLimits) return wrapOrder(order, wrapping);
  // Every field named (not a spread of `order`): one object shape for every spawn, where a spread
  // made V8 build a hidden class anew at each one.
  return {
    file: order.file,
    argv0: order.argv0,
    args: order.args,
    env: order.env,
    cwd: order.cwd,
    stdio: order.stdio,
    limits: wrapping.limits,
    cgroupProcsFiles: wrapping.cgroupProcsFiles,
    dieWithRuntime: wrapping.dieWithRuntime,
    ownSession: order.ownSession,
    wrapped: order.wrapped,
  };
}

/** The order that runs `order` with its limits and in its cgroup; unchanged when neither applies. */
export function wrapOrder(order: SpawnOrder, wrapping: LaunchWrapping): SpawnOrder {
  let file = order.file;
  let args: readonly string[] = order.args;
  let argv0 = order.argv0;
  const limitArgs = wrapping.prlimit ? prlimitArgs(wrapping.limits) : [];
  if (limitArgs.length > 0) {
    args = [...limitArgs, '--', file, ...args];
    file = wrapping.prlimit!;
    argv0 = 'prlimit';
  }
  if (wrapping.cgroupProcsFiles.length > 0) {
    args = ['-c', JOIN_CGROUPS, 'shuma-launch', ...wrapping.cgroupProcsFiles, '--', file, ...args];
    file = '/bin/sh';
    argv0 = 'sh';
  }
  // Outermost, so that the request is made before anything else runs. child_process forks on
  // the loop's thread, which lives as long as the runtime's process: the signal comes when the
  // runtime dies, not before. A runtime that dies between the fork and setpriv's prctl leaves
  // this child behind (the native spawner checks for that; setpriv cannot).
  if (wrapping.dieWithRuntime && wrapping.setpriv) {
    args = ['--pdeathsig', 'KILL', '--', file, ...args];
    file = wrapping.setpriv;
    argv0 = 'setpriv';
  }
  if (file === order.file) return order;
  return { ...order, file, argv0, args, wrapped: { file: order.file, argv0: order.argv0 } };
}
