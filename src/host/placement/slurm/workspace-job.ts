import { ShumaError } from '../../../protocol/errors.js';
import type { PlacementInfo } from '../../../protocol/placement-spec.js';
import type { WorkspaceSpec } from '../../../protocol/specs.js';
import { allocate, type Allocation, type AllocationRequest } from './allocation.js';
import { jobState } from './job-control.js';
import { checkConf, type SlurmCluster } from './slurm-cli.js';

// Which Slurm job a workspace runs in: the cluster it is asked of, and the job itself — a new
// allocation from the workspace's spec, or, after a restart, the job it had, found by id.

export interface SlurmOptions {
  /** The cluster's slurm.conf (default: $SLURM_CONF). */
  conf?: string;
  /** How long a create waits for the allocation before PLACEMENT_FAILED (default 60 000 ms). */
  allocationWaitMs?: number;
}

export function clusterOf(options: SlurmOptions): SlurmCluster {
  const conf = options.conf ?? process.env.SLURM_CONF;
  if (!conf) {
    throw new ShumaError(
      'PLACEMENT_UNAVAILABLE',
      'no Slurm cluster is configured: pass createRuntime({ slurm: { conf: "/etc/slurm/slurm.conf" } }) or set SLURM_CONF',
    );
  }
  const cluster = { conf };
  checkConf(cluster);
  return cluster;
}

/**
 * `resumed`: the job was found again (its nodes may have gone meanwhile), not granted just now.
 * `settled`: the local salloc that asked for it has ended (a job just granted may answer first).
 */
export async function jobForWorkspace(
  cluster: SlurmCluster,
  options: SlurmOptions,
  spec: WorkspaceSpec,
  wsId: string,
  resume: PlacementInfo | undefined,
  how: Pick<AllocationRequest, 'signal' | 'spawner' | 'asked' | 'comment'>,
): Promise<Allocation & { resumed: boolean; settled: Promise<void> }> {
  if (resume?.kind === 'slurm' && typeof resume.jobId === 'string') {
    // A restarted runtime finds its job by id: still running, the workspace keeps it.
    how.asked?.();
    const state = await jobState(cluster, resume.jobId);
    if (state.state !== 'RUNNING') {
      throw new ShumaError(
        'PLACEMENT_FAILED',
        `its Slurm job ${resume.jobId} is gone (squeue lists it as ${state.state ?? 'nothing'}): the workspace is restored as stopped; create it again for a new allocation`,
      );
    }
    return { jobId: resume.jobId, nodes: state.nodes, resumed: true, settled: Promise.resolve() };
  }
  const placement = spec.placement?.kind === 'slurm' ? spec.placement : { kind: 'slurm' as const };
  const granted = await allocate(cluster, {
    name: `shuma-${wsId}`,
    ...(placement.nodes !== undefined ? { nodes: placement.nodes } : {}),
    ...(placement.nodelist !== undefined ? { nodelist: placement.nodelist } : {}),
    ...(placement.partition !== undefined ? { partition: placement.partition } : {}),
    ...(placement.account !== undefined ? { account: placement.account } : {}),
    ...(spec.limits?.memoryBytes !== undefined ? { memoryBytes: spec.limits.memoryBytes } : {}),
    ...(spec.ttlMs !== undefined ? { ttlMs: spec.ttlMs } : {}),
    waitMs: options.allocationWaitMs ?? 60_000,
    ...how,
  });
  return { ...granted, resumed: false };
}
