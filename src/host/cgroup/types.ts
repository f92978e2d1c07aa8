// The public shape of cgroup support: what detection found, and one workspace's cgroup.

export type CgroupVersion = 1 | 2;

export interface CgroupSupport {
  version: CgroupVersion | null; // null: none usable
  /** Why cgroups cannot be used (null when they can): goes into the workspace's warnings. */
  reason: string | null;
  /** v1: mount point per controller ({ memory: '/sys/fs/cgroup/memory', pids: ..., cpuacct?: ... }); v2: { unified: '/sys/fs/cgroup' }. */
  mounts: Record<string, string>;
  /** The runtime's own cgroup path per hierarchy (from /proc/self/cgroup), relative to the mount. */
  own: Record<string, string>;
}

export interface CgroupSample {
  memoryBytes: number | null;
  cpuUsec: number | null;
  /** Tasks (threads included: that is what the pids controller counts), null without a pids controller. */
  pids: number | null;
  /**
   * Forks the kernel refused because pids.max was reached (`max` of pids.events, v1 and v2),
   * since the cgroup was made; null where the kernel does not count them.
   */
  forksRefused: number | null;
}

export interface WorkspaceCgroup {
  readonly version: CgroupVersion;
  /** Directories of this cgroup, one per hierarchy (v1: memory, pids, and cpuacct when available; v2: one). */
  readonly dirs: readonly string[];
  /** The cgroup.procs files a process writes its own pid into to join (one per hierarchy). */
  readonly procsFiles: readonly string[];
  /** Current usage; files stay open and are re-read with positional reads, so sampling is cheap. */
  sample(): CgroupSample;
  /** Kernel OOM kills so far in this cgroup (0 where the kernel does not count them: see the creation warnings). */
  oomKills(): number;
  /** Pids now in the cgroup (and in any cgroup a process made below it). */
  pids(): number[];
  /** Kills everything in it and resolves once it is empty; rejects after `timeoutMs` (default 10 s) if it never empties. */
  killAll(options?: { timeoutMs?: number }): Promise<void>;
  /** Removes the cgroup's directories (retrying briefly on EBUSY). Idempotent. Closes the open files. */
  remove(): Promise<void>;
}

export interface CgroupRequest {
  /** Runtime-owned parent under the runtime's own cgroup, e.g. `shuma-<runtimeId>`; '' places `name` at each hierarchy's root. */
  parent: string;
  /** A workspace id, or the user's `cgroup: '<path>'` (relative, no `..`). */
  name: string;
  memoryBytes?: number;
  nproc?: number;
}

export interface CgroupCreation {
  cgroup: WorkspaceCgroup | null;
  warnings: string[];
}
