/** One sample of a workspace's resource use. */
export interface WorkspaceStats {
  /** Epoch ms. */
  at: number;
  source: 'cgroup' | 'proc' | 'none';
  rssBytes: number | null;
  cpuUsec: number | null;
  /** Since the previous sample, 100 = one core; null on the first. */
  cpuPercent: number | null;
  /** Processes of the workspace alive now, descendants included. */
  processes: number;
  /**
   * Forks refused so far because the workspace's cgroup reached its pids limit (a fork bomb,
   * contained); null without a cgroup pids controller that counts them.
   */
  forksRefused?: number | null;
  commandsAlive: number;
  commandsTotal: number;
}

export interface QuotaReport {
  memLimit: number | null;
  nprocLimit: number | null;
  /** Human-readable, e.g. `memory: 12.50 MiB > 10.00 MiB limit`, `nproc: 3 alive > 2 limit`. */
  breaches: string[];
  /** Kernel OOM kills seen in the workspace's cgroup. */
  oomKills: number;
  /** Forks the kernel refused at the cgroup's pids limit (pids.events `max`); null where not counted. */
  forksRefused: number | null;
}

export type QuotaResource = 'memory' | 'nproc';

export function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(2)} MiB`;
}

export function breachText(resource: QuotaResource, used: number, limit: number): string {
  return resource === 'memory' ? `memory: ${mib(used)} > ${mib(limit)} limit` : `nproc: ${used} alive > ${limit} limit`;
}

/** A pids limit that holds: the count never exceeds it, the kernel refuses the forks instead. */
export function forksRefusedText(used: number, limit: number, refused: number): string {
  return `nproc: limit ${limit} reached (${used} alive), ${refused} fork${refused === 1 ? '' : 's'} refused`;
}
