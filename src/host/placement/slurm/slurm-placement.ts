import { execFileSync } from 'node:child_process';
import { ShumaError, serializeError } from '../../../protocol/errors.js';
import type { ActorSnapshot } from '../../../protocol/actor-records.js';
import type { RelaunchOrder, Signal } from '../../../protocol/host-requests.js';
import type { PlacementInfo } from '../../../protocol/placement-spec.js';
import type { WorkspaceSpec } from '../../../protocol/specs.js';
import { HostActor } from '../../main-actors/host-actor.js';
import type { WorkspaceUsage } from '../../main-actors/quota-actor.js';
import { Reaper } from '../../main-actors/reaper.js';
import type { CommandEntry, LaunchPlan, PipelineEntry, StopScope, WorkspaceEntry } from '../../registry/registry.js';
import { resolveExecutable } from '../../spawn/spawn-check.js';
import type { SpawnOrder } from '../../spawn/spawner.js';
import type { LocalPlacementDeps } from '../local-placement.js';
import type { Placement, PreparedWorkspace } from '../placement.js';
import { stopInWaves } from '../../main-actors/ordered-stop.js';
import { killGroup, killSrunLater, signalNamedSteps, type NamedStep } from './step-signals.js';
import { SlurmJob } from './slurm-job.js';
import { slurmEnv } from './slurm-cli.js';
import { stepCommandLine } from './step.js';
import { StepSpawner, type StepMeta } from './step-spawner.js';
import { clusterOf, jobForWorkspace, type SlurmOptions } from './workspace-job.js';
import { withdrawn } from './allocation.js';
import { AllocationsUnderWay } from './allocations-under-way.js';
import { sallocSpawnerOf } from './salloc-process.js';

/**
 * Workspaces placed on a Slurm cluster: each is one job (an allocation held by salloc), each run
 * of a command a step in it, started by a local srun whose stdio are the host's pipes. The host
 * actor and the reaper are the local placement's own classes: what differs is the order (srun
 * on a node), the signal (scancel to the step), the exit (the task's, with oom and node-lost),
 * the stats (sstat) and the teardown (the job cancelled until squeue forgets it).
 */
export class SlurmPlacement implements Placement {
  readonly kind = 'slurm';
  private readonly host: HostActor;
  private readonly reaper: Reaper;
  private readonly jobs = new Map<string, SlurmJob>();
  /** The step name of each live srun, by its pid. */
  private readonly steps = new Map<number, StepMeta>();
  private srun: string | null = null;
  /** A teardown, killNow or close withdraws them. */
  private readonly underWay = new AllocationsUnderWay();
  private stepSeq = 0;

  constructor(
    private readonly deps: LocalPlacementDeps,
    private readonly options: SlurmOptions,
  ) {
    const { registry, table, logger, now, events } = deps;
    // Exits reach their actors through the host actor, as locally: a relaunch on a standing
    // order (restart at once) starts a new step before the actor's round trip.
    this.reaper = new Reaper({ registry, table, logger, now, toChild: (ws, key, event) => this.host.tellExit(ws, key, event), onScopeEmpty: events.scopeEmpty });
    const spawner = new StepSpawner(deps.spawner, {
      refusal: (meta) => this.refusal(meta),
      started: (pid, meta) => this.steps.set(pid, meta),
      ended: (pid) => this.stepEnded(pid),
      isLost: (jobId, node) => this.jobByJobId(jobId)?.isLost(node) ?? true,
      lostNode: (jobId, node) => this.jobByJobId(jobId)?.markLost([node]),
    });
    this.host = new HostActor({
      registry,
      table,
      spawner,
      reaper: this.reaper,
      logger,
      now,
      newId: deps.newId,
      logBufferBytes: deps.logBufferBytes,
      toChild: events.toChild,
      prlimit: () => null,
      // child_process's children get no parent-death signal through setpriv here: an srun left
      // by a crash is found by the state mark at the next start, and its step ends with it.
      setpriv: () => null,
      dieWithRuntime: deps.dieWithRuntime,
      probes: deps.probes,
      taps: deps.taps,
      // A step's output goes through this srun's pipes, so its log files are written here too.
      logFiles: deps.logFiles,
      orderFor: (ws, plan) => this.orderFor(ws, plan),
    });
  }

  /**
   * A workspace is hosted while salloc runs (core/create-while-placing.ts); a teardown before the
   * grant withdraws the request (salloc ended, what it queued cancelled).
   */
  readonly hostsWhilePreparing = true;

  prepare(spec: WorkspaceSpec, wsId: string, resume?: PlacementInfo): Promise<PreparedWorkspace> {
    return this.underWay.track(wsId, (signal) => this.prepareJob(spec, wsId, resume, signal));
  }

  private async prepareJob(spec: WorkspaceSpec, wsId: string, resume: PlacementInfo | undefined, signal: AbortSignal): Promise<PreparedWorkspace> {
    const cluster = clusterOf(this.options);
    this.srun ??= await resolveExecutable('srun', '/', process.env.PATH ?? '/usr/bin:/bin').catch(() => {
      throw new ShumaError('PLACEMENT_UNAVAILABLE', 'srun was not found on PATH: install Slurm\'s client programs (Debian: slurm-client)');
    });
    const spawner = await sallocSpawnerOf(this.deps.spawner);
    const how = { signal, ...(spawner ? { spawner } : {}) };
    const { jobId, nodes, resumed, settled } = await jobForWorkspace(cluster, this.options, spec, wsId, resume, how);
    const job = new SlurmJob(cluster, jobId, nodes, this.deps.logger, (lost) => this.onNodesLost(wsId, lost), settled);
    if (signal.aborted) {
      await job.end();
      throw withdrawn();
    }
    this.jobs.set(wsId, job);
    job.watch(resumed);
    const warnings: string[] = [];
    if (spec.cgroup !== undefined && spec.cgroup !== false) {
      warnings.push("cgroup: a Slurm-placed workspace's cgroup is its job's, made by Slurm on each node (task/cgroup); the spec's cgroup is not made");
    }
    return {
      cgroup: null,
      warnings,
      info: job.info,
      release: async () => {
        this.jobs.delete(wsId);
        await job.end();
      },
    };
  }

  spawnCommand(ws: WorkspaceEntry, command: CommandEntry, restarts: number, relaunch?: RelaunchOrder): void {
    this.host.spawnCommand(ws, command, restarts, relaunch);
  }

  /** A step started ahead of its actor's request and never asked for is ended with its srun (Slurm then ends the step). */
  runAhead(ws: WorkspaceEntry, command: CommandEntry): void {
    this.host.runAhead(ws, command);
  }

  commandMoved(ws: WorkspaceEntry, command: CommandEntry, snapshot: ActorSnapshot): void {
    this.host.commandMoved(ws, command, snapshot);
  }

  commandStopping(ws: WorkspaceEntry, command: CommandEntry): void {
    this.host.commandStopping(ws, command);
  }

  spawnPipeline(ws: WorkspaceEntry, pipeline: PipelineEntry, attempt: number): void {
    this.host.spawnPipeline(ws, pipeline, attempt);
  }

  /** A step on the node the command asks, or, when it is lost or not asked, the least busy live one. */
  private orderFor(ws: WorkspaceEntry, plan: LaunchPlan): SpawnOrder {
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
      { jobId: job?.jobId ?? 'none', node, name: `shuma-${ws.id}-${++this.stepSeq}`, ...(ws.spec.limits ? { limits: ws.spec.limits } : {}) },
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

  private refusal(meta: StepMeta): ShumaError | null {
    const job = this.jobByJobId(meta.jobId);
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

  /**
   * A pipeline node's step ended: its upstream nodes would get SIGPIPE on their next write
   * locally, but srun does not die of a closed stdout (it ignores EPIPE and keeps relaying), so
   * each live upstream step is sent SIGPIPE here (`yes | head -1` ends at once, as in bash).
   */
  private stepEnded(pid: number): void {
    const meta = this.steps.get(pid);
    this.steps.delete(pid);
    const job = meta ? this.jobByJobId(meta.jobId) : undefined;
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

  private jobByJobId(jobId: string): SlurmJob | undefined {
    for (const job of this.jobs.values()) if (job.jobId === jobId) return job;
    return undefined;
  }

  /** Steps on a lost node cannot be reached: their sruns are ended here, their exits read node-lost. */
  private onNodesLost(wsId: string, lost: readonly string[]): void {
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

  checkEmpty(scope: StopScope): void {
    this.reaper.check(scope);
  }

  usage(ws: WorkspaceEntry): WorkspaceUsage {
    const job = this.jobs.get(ws.id);
    const sample = job?.usage() ?? { rssBytes: null, cpuUsec: null };
    return { source: job ? 'cgroup' : 'none', rssBytes: sample.rssBytes, cpuUsec: sample.cpuUsec, cpuByPid: null, processes: this.deps.table.aliveIn(ws).length, forksRefused: null };
  }

  async teardown(ws: WorkspaceEntry): Promise<void> {
    await this.underWay.withdraw(ws.id);
    const job = this.jobs.get(ws.id);
    if (!job) return;
    this.jobs.delete(ws.id);
    await job.end();
  }

  forget(ws: WorkspaceEntry): void {
    const job = this.jobs.get(ws.id);
    job?.stopWatching();
  }

  killNow(ws: WorkspaceEntry): void {
    for (const pgid of ws.groups) killGroup(pgid);
    const job = this.jobs.get(ws.id);
    // A request under way: its salloc ends now, what it queued is cancelled by name.
    const asking = this.underWay.withdrawNow(ws.id);
    if (!job && !asking) return;
    try {
      const target = job ? job.jobId : `--name=shuma-${ws.id}`;
      execFileSync('scancel', ['--quiet', target], { env: slurmEnv(job?.cluster ?? clusterOf(this.options)), timeout: 5000, stdio: 'ignore' });
    } catch {
      // The process is exiting: the job's --time backstop ends it if the controller did not answer.
    }
  }

  async close(): Promise<void> {
    await this.underWay.withdrawAll();
    this.reaper.close();
    await Promise.all([...this.jobs.values()].map((job) => job.end().catch(() => undefined)));
    this.jobs.clear();
  }
}
