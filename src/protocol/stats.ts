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
}

export type QuotaResource = 'memory' | 'nproc';

export function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(2)} MiB`;
}

export function breachText(resource: QuotaResource, used: number, limit: number): string {
  return resource === 'memory' ? `memory: ${mib(used)} > ${mib(limit)} limit` : `nproc: ${used} alive > ${limit} limit`;
}
