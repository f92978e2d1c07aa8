import { execFileSync } from 'node:child_process';
import { ShumaError, serializeError } from '../../../protocol/errors.js';
import type { ActorSnapshot } from '../../../protocol/actor-records.js';
import type { RelaunchOrder, Signal } from '../../../protocol/host-requests.js';
import type { PlacementInfo } from '../../../protocol/placement-spec.js';
import type { WorkspaceSpec } from '../../../protocol/specs.js';
import { HostActor } from '../../main-actors/host-actor.js';
import type { WorkspaceUsage } from '../../main-actors/quota-actor.js';
import { Reaper } from '../../main-actors/reaper.js';
import type { CommandEntry, PipelineEntry, StopScope, WorkspaceEntry } from '../../registry/registry.js';
import { resolveExecutable } from '../../spawn/spawn-check.js';
import type { LocalPlacementDeps } from '../local-placement.js';
import type { Placement, PreparedWorkspace } from '../placement.js';
import { forgetReusedGroups } from '../../processes/reused-groups.js';
import { killGroup } from './step-signals.js';
import { SlurmJob } from './slurm-job.js';
import { SlurmJobs } from './slurm-jobs.js';
import { slurmEnv, type SlurmCluster } from './slurm-cli.js';
import { StepSpawner, type StepMeta } from './step-spawner.js';
import { StepOrders } from './step-orders.js';
import { RunSignals } from './run-signals.js';
import { clusterOf, jobForWorkspace, type SlurmOptions } from './workspace-job.js';
import { withdrawn } from './allocation.js';
import { AllocationsUnderWay } from './allocations-under-way.js';
import { sallocSpawnerOf, type SallocSpawner } from './salloc-process.js';
import { cancelOrphanJobs, jobComment } from './orphan-jobs.js';

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
  private readonly jobs = new SlurmJobs();
  /** The step name of each live srun, by its pid. */
  private readonly steps = new Map<number, StepMeta>();
  /** A teardown, killNow or close withdraws them. */
  private readonly underWay = new AllocationsUnderWay();
  private readonly orders: StepOrders;
  /** With a stateDir: its mark and this runtime's token, in the comment of every job it asks for (orphan-jobs.ts). */
  private jobComment: string | undefined;
  private readonly token: string;
  private recovering: Promise<void> = Promise.resolve();
  private readonly signals: RunSignals;
  /** salloc's spawner, once looked for (undefined inside: child_process starts salloc). */
  private sallocSpawner: { spawner: SallocSpawner | undefined } | null = null;
  private clusterObject: SlurmCluster | null = null;

  constructor(
    private readonly deps: LocalPlacementDeps,
    private readonly options: SlurmOptions,
  ) {
    const { registry, table, logger, now, events } = deps;
    // Exits reach their actors through the host actor, as locally: a relaunch on a standing
    // order (restart at once) starts a new step before the actor's round trip.
    this.reaper = new Reaper({ registry, table, logger, now, toChild: (ws, key, event) => this.host.tellExit(ws, key, event), onScopeEmpty: events.scopeEmpty });
    const spawner = new StepSpawner(deps.spawner, {
      refusal: (meta) => this.orders.refusal(meta),
      started: (pid, meta) => this.steps.set(pid, meta),
      ended: (pid) => this.signals.stepEnded(pid),
      isLost: (jobId, node) => this.jobs.byJobId(jobId)?.isLost(node) ?? true,
      lostNode: (jobId, node) => this.jobs.byJobId(jobId)?.markLost([node]),
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
      orderFor: (ws, plan) => this.orders.orderFor(ws, plan),
    });
    this.orders = new StepOrders(deps, this.jobs);
    this.token = deps.newId();
    this.signals = new RunSignals(deps, this.jobs, this.steps, this.host, this.reaper);
  }

  /**
   * A workspace is hosted while salloc runs (core/create-while-placing.ts); a teardown before the
   * grant withdraws the request (salloc ended, what it queued cancelled).
   */
  readonly hostsWhilePreparing = true;

  prepare(spec: WorkspaceSpec, wsId: string, resume?: PlacementInfo, asked?: () => void): Promise<PreparedWorkspace> {
    return this.underWay.track(wsId, (signal) => this.prepareJob(spec, wsId, resume, signal, asked));
  }

  private async prepareJob(spec: WorkspaceSpec, wsId: string, resume: PlacementInfo | undefined, signal: AbortSignal, asked?: () => void): Promise<PreparedWorkspace> {
    const cluster = this.cluster();
    // The first prepare looks for srun and salloc on PATH (real I/O, an event-loop turn): asked
    // now. Every later one reaches salloc's spawn request within prepare()'s synchronous part,
    // so that a create starts salloc before anything else (create-while-placing.ts).
    if (this.orders.srun === null || this.sallocSpawner === null) {
      asked?.();
      this.orders.srun ??= await resolveExecutable('srun', '/', process.env.PATH ?? '/usr/bin:/bin').catch(() => {
        throw new ShumaError('PLACEMENT_UNAVAILABLE', 'srun was not found on PATH: install Slurm\'s client programs (Debian: slurm-client)');
      });
      this.sallocSpawner ??= { spawner: await sallocSpawnerOf(this.deps.spawner) };
    }
    const { spawner } = this.sallocSpawner;
    const how = { signal, ...(spawner ? { spawner } : {}), ...(asked ? { asked } : {}), ...(this.jobComment ? { comment: this.jobComment } : {}) };
    const { jobId, nodes, resumed, settled } = await jobForWorkspace(cluster, this.options, spec, wsId, resume, how);
    const job = new SlurmJob(cluster, jobId, nodes, this.deps.logger, (lost) => this.signals.onNodesLost(wsId, lost), settled);
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

  /**
   * The configured cluster, its slurm.conf checked at every use; one object while the conf is the
   * same, so that its client programs' environment is made once (slurmEnv).
   */
  private cluster(): SlurmCluster {
    const fresh = clusterOf(this.options);
    if (this.clusterObject?.conf !== fresh.conf) this.clusterObject = fresh;
    return this.clusterObject;
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

  signal(scope: StopScope, signal: Signal): void {
    this.signals.signal(scope, signal);
  }

  signalRun(ws: WorkspaceEntry, runId: string, signal: Signal): void {
    this.signals.signalRun(ws, runId, signal);
  }

  signalInWaves(ws: WorkspaceEntry, waves: string[][]): void {
    this.signals.signalInWaves(ws, waves);
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
    forgetReusedGroups(ws.groups, this.deps.table.aliveIn(ws));
    for (const pgid of ws.groups) killGroup(pgid);
    const job = this.jobs.get(ws.id);
    // A request under way: its salloc ends now, what it queued is cancelled by name.
    const asking = this.underWay.withdrawNow(ws.id);
    if (!job && !asking) return;
    try {
      const target = job ? job.jobId : `--name=shuma-${ws.id}`;
      execFileSync('scancel', ['--quiet', target], { env: slurmEnv(job?.cluster ?? this.cluster()), timeout: 5000, stdio: 'ignore' });
    } catch {
      // The process is exiting: the job's --time backstop ends it if the controller did not answer.
    }
  }

  openedState(mark: string, known: readonly PlacementInfo[], warn: (message: string) => void): void {
    this.jobComment = jobComment(mark, this.token);
    let cluster;
    try {
      cluster = this.cluster();
    } catch {
      return; // no Slurm cluster configured: nothing was asked of one
    }
    const kept = new Set(known.flatMap((info) => (info.kind === 'slurm' && typeof info.jobId === 'string' ? [info.jobId] : [])));
    this.recovering = cancelOrphanJobs(cluster, mark, this.token, kept).then(
      (jobs) => {
        if (jobs.length === 0) return;
        warn(`${jobs.length} Slurm job(s) asked for by a runtime that died on this stateDir were cancelled (${jobs.map((j) => `${j.jobId} ${j.name} ${j.state}`).join(', ')}): their workspaces were never made`);
      },
      (error: unknown) => this.deps.logger.warn({ err: serializeError(error) }, 'could not look for Slurm jobs left by a runtime that died on this stateDir'),
    );
  }

  async close(): Promise<void> {
    await this.recovering;
    await this.underWay.withdrawAll();
    this.reaper.close();
    await Promise.all([...this.jobs.values()].map((job) => job.end().catch(() => undefined)));
    this.jobs.clear();
  }
}
