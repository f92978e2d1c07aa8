import type { Signal } from '../../../protocol/host-requests.js';
import type { HostActor } from '../../main-actors/host-actor.js';
import type { Reaper } from '../../main-actors/reaper.js';
import { stopInWaves } from '../../main-actors/ordered-stop.js';
import type { StopScope, WorkspaceEntry } from '../../registry/registry.js';
import type { LocalPlacementDeps } from '../local-placement.js';
import type { SlurmJob } from './slurm-job.js';
import type { SlurmJobs } from './slurm-jobs.js';
import { killGroup, killSrunLater, signalNamedSteps, type NamedStep } from './step-signals.js';
import type { StepMeta } from './step-spawner.js';

// Which steps a signal of a Slurm-placed workspace reaches: a stop scope's, one run's, a stop's
// waves, a pipeline node's upstream when it ended, the runs of a node that left the allocation.
// How a step is signalled (scancel by name, or its srun) is step-signals.ts.

export class RunSignals {
  constructor(
    private readonly deps: LocalPlacementDeps,
    private readonly jobs: SlurmJobs,
    /** The step name of each live srun, by its pid. */
    private readonly steps: Map<number, StepMeta>,
    private readonly host: HostActor,
    private readonly reaper: Reaper,
  ) {}

  /**
   * A pipeline node's step ended: its upstream nodes would get SIGPIPE on their next write
   * locally, but srun does not die of a closed stdout (it ignores EPIPE and keeps relaying), so
   * each live upstream step is sent SIGPIPE here (`yes | head -1` ends at once, as in bash).
   */
  stepEnded(pid: number): void {
    const meta = this.steps.get(pid);
    this.steps.delete(pid);
    const job = meta ? this.jobs.byJobId(meta.jobId) : undefined;
    const wsId = job ? [...this.jobs.entries()].find(([, j]) => j === job)?.[0] : undefined;
    const ws = wsId ? this.deps.registry.get(wsId) : undefined;
    if (!job || !ws) return;
    const run = this.deps.table.ofWorkspace(ws.id).find((r) => r.pid === pid);
    const pipeline = run?.pipelineId ? ws.pipelines.get(run.pipelineId) : undefined;
    if (!run || !pipeline || pipeline.hostStop) return;
    const upstream = pipeline.spec.edges
      .filter((edge) => edge.to === run.label)
      .map((edge) => pipeline.currentRuns.find((r) => r.label === edge.from && r.alive))
      .map((r) => (r ? { pid: r.pid, name: this.steps.get(r.pid)?.name } : null))
      .filter((r): r is { pid: number; name: string } => r !== null && r.name !== undefined);
    if (upstream.length > 0) void this.signalNamed(job, upstream, 'SIGPIPE');
  }

  /** Steps on a lost node cannot be reached: their sruns are ended here, their exits read node-lost. */
  onNodesLost(wsId: string, lost: readonly string[]): void {
    const ws = this.deps.registry.get(wsId);
    if (!ws) return;
    this.deps.logger.warn({ ws: wsId, lost }, 'Slurm nodes left the allocation');
    for (const run of this.deps.table.aliveIn(ws)) {
      if (!run.node || !lost.includes(run.node)) continue;
      killSrunLater(this.signalDeps, run.pid);
    }
  }

  signal(scope: StopScope, signal: Signal): void {
    this.signalRuns(scope, signal);
  }

  /** One run alone (stopCommand, restartCommand, a liveness restart): its step, by name. */
  signalRun(ws: WorkspaceEntry, runId: string, signal: Signal): void {
    this.host.revokeOrder(runId);
    const run = this.deps.table.get(runId);
    const job = this.jobs.get(ws.id);
    if (!run || !run.alive || run.wsId !== ws.id) return;
    const name = this.steps.get(run.pid)?.name;
    if (job && name) void this.signalNamed(job, [{ pid: run.pid, name }], signal);
    else killGroup(run.pid, signal === 'SIGKILL' ? 'SIGKILL' : 'SIGTERM');
  }

  /** A workspace stop in dependency order: the same waves as locally, each wave's steps by name. */
  signalInWaves(ws: WorkspaceEntry, waves: string[][]): void {
    void stopInWaves(ws, waves, this.deps.table, (only) => this.signalRuns(ws, 'SIGTERM', only));
  }

  /** Signals the scope's live runs (or those of `only`, by srun pid); from then on the scope is stopping. */
  private signalRuns(scope: StopScope, signal: Signal, only?: ReadonlySet<number>): void {
    const alive = this.deps.table.aliveIn(scope);
    if (!scope.hostStop) scope.hostStop = { lastSignal: signal, aliveAtStop: alive.length, descendants: [] };
    scope.hostStop.lastSignal = signal;
    const ws = this.deps.registry.get(scope.wsId);
    const job = ws ? this.jobs.get(ws.id) : undefined;
    const targets = only ? alive.filter((run) => only.has(run.pid)) : alive;
    const named = targets.map((run) => ({ pid: run.pid, name: this.steps.get(run.pid)?.name })).filter((s): s is NamedStep => !!s.name);
    if (job && named.length > 0) void this.signalNamed(job, named, signal);
    else for (const { pid } of targets) killGroup(pid, signal === 'SIGKILL' ? 'SIGKILL' : 'SIGTERM');
    this.reaper.check(scope);
  }

  private signalNamed(job: SlurmJob, runs: NamedStep[], signal: Signal | 'SIGPIPE'): Promise<void> {
    return signalNamedSteps(this.signalDeps, job.cluster, job.jobId, runs, signal);
  }

  /** A pid is signalled or killed late only while its srun is still ours (not ended, so not reused). */
  private get signalDeps() {
    return { logger: this.deps.logger, isLiveSrun: (pid: number) => this.steps.has(pid) };
  }
}
