import { randomBytes } from 'node:crypto';
import { ShumaError } from '../../../protocol/errors.js';
import type { LaunchPlan, WorkspaceEntry } from '../../registry/registry.js';
import type { SpawnOrder } from '../../spawn/spawner.js';
import type { LocalPlacementDeps } from '../local-placement.js';
import type { SlurmJob } from './slurm-job.js';
import type { SlurmJobs } from './slurm-jobs.js';
import { slurmEnv } from './slurm-cli.js';
import { stepCommandLine } from './step.js';
import type { StepMeta } from './step-spawner.js';

// Where and how a run of a Slurm-placed workspace starts: the srun line of its step, on the node
// it asks or the least busy live one, or the reason it cannot start at all.

export class StepOrders {
  /** srun's path, resolved at the first prepare (PLACEMENT_UNAVAILABLE without it). */
  srun: string | null = null;
  private stepSeq = 0;
  /**
   * Steps are signalled by name (`scancel --signal`, step-signals.ts), and a workspace keeps its id
   * across runtimes: a restored runtime counting from 1 again would name its first step as a step
   * the last one left running (adopted), and a stop of one would signal both.
   */
  private readonly runtimeTag = randomBytes(4).toString('hex');

  constructor(
    private readonly deps: LocalPlacementDeps,
    private readonly jobs: SlurmJobs,
  ) {}

  /** A step on the node the command asks, or, when it is lost or not asked, the least busy live one. */
  orderFor(ws: WorkspaceEntry, plan: LaunchPlan): SpawnOrder {
    const job = this.jobs.get(ws.id);
    const asked = plan.spec.node;
    let node = asked ?? '';
    if (job && (!asked || (job.isLost(asked) && job.nodes.includes(asked)))) {
      node = this.leastBusy(ws, job) ?? asked ?? job.nodes[0]!;
      if (asked && node !== asked) {
        this.deps.logger.warn({ ws: ws.id, label: plan.label, asked, node }, 'node lost: the command runs on a live node of the allocation');
      }
    }
    const line = stepCommandLine(
      this.srun ?? 'srun',
      { jobId: job?.jobId ?? 'none', node, name: `shuma-${ws.id}-${this.runtimeTag}-${++this.stepSeq}`, ...(ws.spec.limits ? { limits: ws.spec.limits } : {}) },
      plan.file,
      plan.spec.argv ?? [],
    );
    return {
      file: line.file,
      argv0: 'srun',
      args: line.args,
      env: slurmEnv(job?.cluster ?? { conf: '' }, plan.env),
      cwd: plan.cwd,
    };
  }

  private leastBusy(ws: WorkspaceEntry, job: SlurmJob): string | undefined {
    const load = new Map(job.liveNodes().map((node) => [node, 0]));
    for (const run of this.deps.table.aliveIn(ws)) if (run.node && load.has(run.node)) load.set(run.node, load.get(run.node)! + 1);
    return [...load.entries()].sort((a, b) => a[1] - b[1])[0]?.[0];
  }

  refusal(meta: StepMeta): ShumaError | null {
    const job = this.jobs.byJobId(meta.jobId);
    if (!job) return new ShumaError('SPAWN_FAILED', `the workspace's Slurm allocation is gone: nothing can start in it`);
    if (!job.nodes.includes(meta.node)) {
      return new ShumaError(
        'SPAWN_FAILED',
        `node ${JSON.stringify(meta.node)} is not a node of Slurm job ${job.jobId} (it holds ${job.nodes.join(', ')}): name one of those in the command's node`,
        { field: 'node' },
      );
    }
    if (job.isLost(meta.node)) {
      return new ShumaError('SPAWN_FAILED', `every node of Slurm job ${job.jobId} is lost (${job.nodes.join(', ')}): nothing can start in it`);
    }
    return null;
  }
}
