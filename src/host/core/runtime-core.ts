import { availableParallelism } from 'node:os';
import { pino, type Logger } from 'pino';
import { monotonicFactory } from 'ulid';
import { pooledRandom } from './pooled-random.js';
import { Reaper } from '../main-actors/reaper.js';
import { WorkerPool } from '../workers/worker-pool.js';
import { ShumaError, serializeError } from '../../protocol/errors.js';
import type {
  ActorSnapshot,
  ChildEvent,
  ToWorker,
  FromWorker,
  InspectionRecord,
  PlainValue,
  StopReason,
  WorkspaceEvent,
} from '../../protocol/messages.js';
import { validatePipelineSpec, type PipelineSpec } from '../../protocol/pipeline-spec.js';
import { DEFAULT_GRACE_MS, type CommandSpec, type WorkspaceSpec } from '../../protocol/specs.js';
import {
  resolveRestartPolicy,
  validateCommandSpec,
  validateGraceMs,
  validateWorkspaceSpec,
} from '../../protocol/validate-spec.js';
import { systemClock, type RuntimeClock } from './clock.js';
import { deferred } from '../processes/deferred.js';
import { QuotaActor } from '../main-actors/quota-actor.js';
import { createWorkspaceCgroup, detectCgroups, removeCgroupParent, type CgroupSupport } from '../cgroup/cgroups.js';
import { FlowHub } from '../flows/flow-hub.js';
import { findPrlimit, launchPlan, structuredCloneSpec, unresolvedPlan } from '../spawn/launch-plan.js';
import {
  checkOptions,
  DEFAULT_LOG_BUFFER_BYTES,
  DEFAULT_STATS_INTERVAL_MS,
  ULID_PATTERN,
  type CreateWorkspaceOptions,
  type HealthCounts,
  type RuntimeOptions,
} from './runtime-options.js';

export type { CreateWorkspaceOptions, HealthCounts, RuntimeOptions };
import { WhyTrails } from './why-trail.js';
import { collectSnapshot } from '../persistence/collect.js';
import { findMarkedProcesses, killProcesses, STATE_MARK_VARIABLE, stateMark } from '../persistence/orphans.js';
import { restoreSnapshot } from '../persistence/restore.js';
import { checkSnapshotData, type PersistedProcess, type PersistedWorkspace, type SnapshotData } from '../persistence/snapshot-data.js';
import { isSameProcess, type ProcStat } from '../processes/proc.js';
import { keepSnapshotAside, readSnapshotFile } from '../persistence/snapshot-file.js';
import { acquireStateLock, type StateLock } from '../persistence/state-lock.js';
import { StateStore } from '../persistence/state-store.js';
import { HostActor } from '../main-actors/host-actor.js';
import { createSpawner } from '../spawn/choose-spawner.js';
import { ProcessTable, type RunEntry } from '../processes/process-table.js';
import {
  Registry,
  type CgroupHandle,
  type CommandEntry,
  type LaunchPlan,
  type PipelineEntry,
  type PipelineExit,
  type StopResult,
  type StopScope,
  type WorkspaceEntry,
} from '../registry/registry.js';
import { checkCwd } from '../spawn/spawn-check.js';
import type { Spawner } from '../spawn/spawner.js';
import { unsupportedWarnings } from './workspace-warnings.js';
import { CommandControl, uniqueLabel } from './command-control.js';

function stateName(value: ActorSnapshot['value']): string {
  return typeof value === 'string' ? value : (Object.keys(value)[0] ?? '');
}

/**
 * Everything the runtime does, behind the public handles: the registry of workspaces, the
 * host and reaper actors, the worker pool, and the mirror of every actor's snapshot.
 */
export class RuntimeCore {
  readonly logger: Logger;
  readonly logBufferBytes: number;
  readonly clock: RuntimeClock;
  readonly registry = new Registry();
  readonly table = new ProcessTable();
  /** Every pipeline of a live workspace, finished or not, by id. */
  readonly pipelines = new Map<string, PipelineEntry>();
  /** Named pipeline specs, to run again later. */
  readonly savedPipelines = new Map<string, PipelineSpec>();
  private readonly pool: WorkerPool;
  private readonly host: HostActor;
  private readonly reaper: Reaper;
  readonly quota: QuotaActor;
  readonly flows: FlowHub;
  /** Why each command and pipeline is as it is: their causal trails. */
  readonly why = new WhyTrails();
  private readonly spawner: Spawner;
  /** util-linux's prlimit, found once: rlimits are applied through it (unless the spawner does). */
  private prlimit: string | null | undefined;
  private readonly newId = monotonicFactory(pooledRandom());
  /** Names this runtime's cgroup parent: two runtimes on one machine never share one. */
  private readonly runtimeId = this.newId();
  private cgroupSupport: CgroupSupport | undefined;
  /** The snapshot writer, when the runtime has a stateDir. */
  state: StateStore | null = null;
  private stateLock: StateLock | null = null;
  /** What the runtime noticed at start and could not do as asked (e.g. a snapshot it could not read). */
  readonly warnings: string[] = [];
  private readonly orphanPolicy: 'kill' | 'adopt';
  private readonly inspectors = new Set<(record: InspectionRecord) => void>();
  private readonly clockAcks = new Map<number, { left: number; done: () => void }>();
  private clockSeq = 0;
  private readonly detachClock: (() => void) | undefined;
  private baseEnv: Readonly<Record<string, string>>;
  private closed = false;
  /** Worker threads that died and were replaced. */
  workerRestarts = 0;
  private shutdownPromise: Promise<void> | null = null;
  private readonly killOnExit = () => this.killEverythingNow();
  /** Stop, restart and remove of one command. */
  readonly commandControl: CommandControl;

  constructor(options: RuntimeOptions, spawner?: Spawner) {
    checkOptions(options);
    this.logger = options.logger ?? pino({ name: 'shuma', level: process.env.SHUMA_LOG_LEVEL ?? 'silent' });
    if (!spawner) {
      const choice = createSpawner(process.env.SHUMA_SPAWNER);
      spawner = choice.spawner;
      if (choice.warning) this.warn(choice.warning);
    }
    this.spawner = spawner;
    this.logBufferBytes = options.logBufferBytes ?? DEFAULT_LOG_BUFFER_BYTES;
    this.clock = options.clock ?? systemClock;
    this.orphanPolicy = options.orphans ?? 'kill';
    this.baseEnv = Object.fromEntries(
      Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );
    const now = () => this.clock.now();
    this.flows = new FlowHub(this.logger, now);
    const toChild = (ws: WorkspaceEntry, key: string, event: ChildEvent) =>
      this.pool.send(ws.worker, { type: 'childEvent', wsId: ws.id, key, event });
    this.reaper = new Reaper({
      registry: this.registry,
      table: this.table,
      logger: this.logger,
      now,
      toChild,
      onScopeEmpty: (scope, result) => this.onScopeEmpty(scope, result),
    });
    this.quota = new QuotaActor({
      registry: this.registry,
      table: this.table,
      logger: this.logger,
      now,
      intervalMs: options.statsIntervalMs ?? DEFAULT_STATS_INTERVAL_MS,
      onBreach: (ws, breach) => this.toWorkspace(ws, breach),
      warn: (message) => this.warn(message),
    });
    this.host = new HostActor({
      registry: this.registry,
      table: this.table,
      spawner,
      reaper: this.reaper,
      logger: this.logger,
      now,
      newId: () => this.newId(),
      logBufferBytes: this.logBufferBytes,
      toChild,
      prlimit: () => this.prlimit ?? null,
      taps: this.flows,
    });
    this.pool = new WorkerPool({
      size: options.workers ?? Math.min(2, availableParallelism()),
      manualClockStart: this.clock.manual ? this.clock.now() : null,
      onMessage: (_index, message) => this.receive(message),
      onWorkerLost: (index, error) => this.onWorkerLost(index, error),
    });
    this.commandControl = new CommandControl({
      table: this.table,
      now,
      toChild: (ws, key, event) => this.toChild(ws, key, event),
      toWorkspace: (ws, event) => this.toWorkspace(ws, event),
      changed: () => this.state?.markDirty(),
    });
    if (options.inspect) this.inspectors.add(options.inspect);
    if (this.inspectors.size > 0) this.pool.broadcast({ type: 'inspect', enabled: true });
    this.detachClock = this.clock.onAdvance?.((time) => this.moveClock(time));
    process.on('exit', this.killOnExit);
  }

  // ── messages from the workers ────────────────────────────────────────────────────

  private receive(message: FromWorker): void {
    switch (message.type) {
      case 'hostRequest':
        this.host.receive(message.request);
        return;
      case 'snapshot': {
        const ws = this.registry.get(message.wsId);
        if (ws) this.onWorkspaceSnapshot(ws, message.snapshot);
        return;
      }
      case 'childSnapshot': {
        const ws = this.registry.get(message.wsId);
        if (!ws) return;
        if (message.machine === 'pipeline') {
          const pipeline = ws.pipelines.get(message.key);
          if (!pipeline) return;
          this.why.record('pipeline', pipeline.id, pipeline.snapshot, message.snapshot, this.clock.now());
          this.onPipelineSnapshot(pipeline, message.snapshot);
          return;
        }
        const command = ws.commands.get(message.key);
        if (!command) return;
        const runId = (message.snapshot.context as { runId?: unknown }).runId;
        if (typeof runId === 'string') this.why.alias(runId, command.key);
        this.why.record('command', command.key, command.snapshot, message.snapshot, this.clock.now());
        command.snapshot = message.snapshot;
        for (const observer of command.observers) this.notify(observer, message.snapshot);
        return;
      }
      case 'persisted': {
        const ws = this.registry.get(message.wsId);
        if (!ws) return;
        ws.persisted = message.snapshot;
        this.state?.markDirty();
        return;
      }
      case 'persistedChild': {
        const ws = this.registry.get(message.wsId);
        const children = (ws?.persisted as { children?: Record<string, { snapshot: PlainValue } | undefined> } | null)?.children;
        const entry = children?.[message.key];
        // A child is always in a whole snapshot before any of its own is sent.
        if (!entry) return;
        entry.snapshot = message.snapshot;
        this.state?.markDirty();
        return;
      }
      case 'actorError': {
        const ws = this.registry.get(message.wsId);
        if (ws) this.onActorError(ws, message.error);
        return;
      }
      case 'inspection':
        for (const observer of this.inspectors) this.notify(observer, message.record);
        return;
      case 'clockAck': {
        const pending = this.clockAcks.get(message.seq);
        if (pending && --pending.left === 0) {
          this.clockAcks.delete(message.seq);
          pending.done();
        }
        return;
      }
    }
  }

  private notify<T>(observer: (value: T) => void, value: T): void {
    try {
      observer(value);
    } catch (error) {
      // An observer's bug must not stop the others, nor the runtime.
      this.logger.error({ err: serializeError(error) }, 'an observer threw');
    }
  }

  private onWorkspaceSnapshot(ws: WorkspaceEntry, snapshot: ActorSnapshot): void {
    ws.snapshot = snapshot;
    for (const observer of ws.observers) this.notify(observer, snapshot);
    // A restored workspace may come back mid-stop: any first snapshot of a live actor will do.
    if (!ws.started.settled && (stateName(snapshot.value) === 'running' || (ws.persisted !== null && snapshot.status === 'active'))) {
      ws.started.resolve();
    }
    if (snapshot.status === 'done') this.finish(ws);
  }

  /**
   * A worker thread died (a bug, out of memory, terminated from outside): its actors come back
   * on a new thread from their last persisted snapshots. The processes never noticed: they are
   * the host's. What the dead thread may have missed (exits) is told again; the machines ignore
   * what they already knew.
   */
  private onWorkerLost(index: number, error: unknown): void {
    this.workerRestarts++;
    this.logger.error({ worker: index, restarts: this.workerRestarts, err: serializeError(error) }, 'an actor worker thread died; re-hosting its actors');
    if (index < 0 || this.closed) return;
    this.pool.restartMember(index);
    // The new thread starts knowing nothing: what the old one was told about inspection, it is told again.
    if (this.inspectors.size > 0) this.pool.send(index, { type: 'inspect', enabled: true });
    for (const ws of this.registry.all()) {
      if (ws.worker !== index || ws.failure) continue;
      if (ws.persisted === null) {
        this.onActorError(ws, { name: 'Error', message: 'its worker thread died before its first snapshot' });
        continue;
      }
      this.pool.send(index, {
        type: 'restoreWorkspace',
        wsId: ws.id,
        label: ws.label,
        ttlMs: ws.spec.ttlMs ?? null,
        at: this.clock.now(),
        snapshot: ws.persisted,
        lostKeys: [],
      });
      this.retell(ws);
      if (ws.hostStop) this.reaper.check(ws);
    }
  }

  /**
   * What a re-hosted workspace's children may have missed while their thread was dying: the
   * spawn they asked for (done, or never received) and the exits since. Told again from the
   * process table; a machine ignores what it already knew (runs are matched by id).
   */
  private retell(ws: WorkspaceEntry): void {
    const at = this.clock.now();
    const children = (ws.persisted as { children?: Record<string, { src?: string; snapshot?: { value?: unknown; context?: Record<string, unknown> } }> } | null)?.children ?? {};
    for (const [key, child] of Object.entries(children)) {
      const state = stateName((child.snapshot?.value ?? '') as ActorSnapshot['value']);
      const context = child.snapshot?.context ?? {};
      const runs = this.table.ofWorkspace(ws.id).filter((run) => run.key === key);
      if (child.src === 'command') {
        const restarts = Number(context.restarts ?? 0);
        const latest = runs.filter((run) => run.restarts === restarts).at(-1);
        if (latest) {
          this.toChild(ws, key, { type: 'SPAWNED', at, runId: latest.id, pid: latest.pid });
          if (latest.exit) this.toChild(ws, key, { type: 'EXITED', at, runId: latest.id, ...plainExit(latest.exit) });
        } else if (state === 'starting' || state === 'restarting') {
          this.host.receive({ type: 'spawn', wsId: ws.id, key, restarts });
        }
      } else if (child.src === 'pipeline') {
        const pipeline = ws.pipelines.get(key);
        const attempt = Number(context.attempt ?? 0);
        const current = runs.filter((run) => run.restarts === attempt);
        if (pipeline && current.length === pipeline.nodes.length) {
          this.toChild(ws, key, { type: 'PIPELINE_SPAWNED', at, attempt, runs: current.map((r) => ({ label: r.label, runId: r.id, pid: r.pid })) });
          for (const run of current) {
            if (run.exit) this.toChild(ws, key, { type: 'NODE_EXITED', at, label: run.label, runId: run.id, ...plainExit(run.exit) });
          }
        } else if (state === 'created' || state === 'restarting') {
          this.host.receive({ type: 'spawnPipeline', wsId: ws.id, pipelineId: key, attempt });
        }
      }
    }
  }

  private onActorError(ws: WorkspaceEntry, error: ReturnType<typeof serializeError>): void {
    if (ws.failure) return;
    ws.failure = error;
    this.logger.error({ ws: ws.id, label: ws.label, err: error }, 'workspace actor failed; killing its processes');
    const failure = new ShumaError('ACTOR_FAILED', `workspace ${ws.id} (${ws.label}) failed: ${error.message}`);
    ws.started.reject(failure);
    for (const command of ws.commands.values()) command.firstRun.reject(failure);
    // Nothing supervises these processes any more: none may outlive the actor.
    this.host.signalScope(ws, 'SIGKILL');
  }

  private onScopeEmpty(scope: StopScope, result: StopResult): void {
    const ws = this.registry.get(scope.wsId);
    if (!ws) return;
    if (scope.kind === 'pipeline') {
      const pipeline = ws.pipelines.get(scope.id);
      if (!pipeline) return;
      pipeline.stopResult = result;
      this.toChild(ws, pipeline.id, { type: 'PIPELINE_EMPTY', at: this.clock.now() });
      return;
    }
    ws.stopResult = result;
    // The cgroup goes before the stop is reported: nothing of the workspace outlives stop().
    void (ws.cgroup?.remove() ?? Promise.resolve())
      .catch((error: unknown) =>
        this.logger.warn({ ws: ws.id, err: serializeError(error) }, 'the workspace cgroup could not be removed'),
      )
      .then(() => {
        if (ws.failure) this.finish(ws);
        else this.toWorkspace(ws, { type: 'GROUPS_EMPTY', at: this.clock.now(), reaped: result.reaped });
      });
  }

  private onPipelineSnapshot(pipeline: PipelineEntry, snapshot: ActorSnapshot): void {
    pipeline.snapshot = snapshot;
    for (const observer of pipeline.observers) this.notify(observer, snapshot);
    if (snapshot.status !== 'active') this.settlePipeline(pipeline);
  }

  /** The pipeline actor ended (or its workspace did): its result is known. */
  private settlePipeline(pipeline: PipelineEntry): void {
    const state = pipeline.snapshot ? stateName(pipeline.snapshot.value) : 'stopped';
    const context = (pipeline.snapshot?.context ?? {}) as { exits?: Record<string, PipelineExit>; restarts?: number };
    this.flows.drop(pipeline);
    pipeline.started.reject(
      new ShumaError('SPAWN_FAILED', `pipeline ${pipeline.label} ended before it started`),
    );
    pipeline.done.resolve({
      ok: state === 'succeeded',
      exits: context.exits ?? {},
      restarts: context.restarts ?? 0,
      state,
    });
  }

  /** The workspace actor reached `stopped` (or failed and was reaped): forget it. */
  private finish(ws: WorkspaceEntry): void {
    if (this.registry.get(ws.id) !== ws) return;
    const result = ws.stopResult ?? { reaped: 0, escaped: [] };
    const gone = new ShumaError('WORKSPACE_STOPPED', `workspace ${ws.id} (${ws.label}) stopped before the command started`);
    for (const command of ws.commands.values()) command.firstRun.reject(gone);
    for (const pipeline of ws.pipelines.values()) this.settlePipeline(pipeline);
    this.registry.delete(ws.id);
    this.state?.markDirty();
    this.quota.forget(ws.id);
    for (const pipelineId of ws.pipelines.keys()) this.pipelines.delete(pipelineId);
    this.table.removeWorkspace(ws.id);
    this.pool.send(ws.worker, { type: 'release', wsId: ws.id });
    this.pool.unplace(ws.worker);
    this.logger.info(
      {
        ws: ws.id,
        label: ws.label,
        reaped: result.reaped,
        escaped: result.escaped.length,
        reason: ws.failure ? 'fault' : (ws.snapshot.context.stopReason ?? null),
      },
      'workspace stopped',
    );
    ws.stopped.resolve(result);
  }

  private toWorkspace(ws: WorkspaceEntry, event: WorkspaceEvent): void {
    this.pool.send(ws.worker, { type: 'workspaceEvent', wsId: ws.id, event });
  }

  private toChild(ws: WorkspaceEntry, key: string, event: ChildEvent): void {
    this.pool.send(ws.worker, { type: 'childEvent', wsId: ws.id, key, event });
  }

  // ── the public operations ───────────────────────────────────────────────────────

  ensureOpen(): void {
    if (this.closed) {
      throw new ShumaError('RUNTIME_CLOSED', 'the runtime was shut down: create a new one with createRuntime()');
    }
  }

  workspaceEntry(wsId: string): WorkspaceEntry {
    const ws = typeof wsId === 'string' ? this.registry.get(wsId) : undefined;
    if (!ws) {
      throw new ShumaError(
        'WORKSPACE_NOT_FOUND',
        `no workspace has id ${JSON.stringify(wsId)}: it never existed or was stopped; listWorkspaces() shows the live ones`,
      );
    }
    return ws;
  }

  async createWorkspace(input: WorkspaceSpec, options: CreateWorkspaceOptions = {}): Promise<WorkspaceEntry> {
    this.ensureOpen();
    const spec = validateWorkspaceSpec(structuredCloneSpec(input));
    const id = options.id === undefined ? this.newId() : this.checkGivenId(options.id);
    const ws = await this.prepareWorkspace(spec, id, this.clock.now());
    if (options.id !== undefined) this.checkGivenId(options.id);
    return this.hostWorkspace(ws, {
      type: 'createWorkspace',
      wsId: ws.id,
      label: ws.label,
      ttlMs: spec.ttlMs ?? null,
      at: ws.createdAt,
    });
  }

  /** Everything a workspace needs before its actor exists: cwd checked, cgroup made, warnings. */
  private async prepareWorkspace(spec: WorkspaceSpec, id: string, createdAt: number): Promise<WorkspaceEntry> {
    const cwd = await checkCwd(spec.cwd ?? process.cwd(), 'cwd', 'INVALID_SPEC');
    if (!this.spawner.appliesLimits) this.prlimit ??= await findPrlimit();
    const { cgroup, warnings: cgroupWarnings } = await this.makeCgroup(spec, id);
    if (this.closed) await cgroup?.remove();
    this.ensureOpen();
    return {
      kind: 'workspace',
      id,
      wsId: id,
      groups: new Set(),
      label: spec.label,
      spec,
      cwd,
      env: { ...this.baseEnv, ...spec.env },
      warnings: [
        ...cgroupWarnings,
        ...unsupportedWarnings(spec, { appliesRlimits: this.spawner.appliesLimits || this.prlimit !== null, isRoot: process.getuid?.() === 0, cgroupMade: cgroup !== null }),
      ],
      cgroup,
      oomKillsSeen: 0,
      worker: this.pool.place(),
      createdAt,
      snapshot: { value: 'created', status: 'active', context: {} },
      persisted: null,
      observers: new Set(),
      commands: new Map(),
      pipelines: new Map(),
      started: deferred(),
      stopped: deferred(),
      stopRequested: false,
      hostStop: null,
      stopResult: null,
      pendingSpawns: 0,
      failure: null,
    };
  }

  /** Registers the workspace and hosts its actor (new, or restored); resolves once it runs. */
  private async hostWorkspace(
    ws: WorkspaceEntry,
    message: Extract<ToWorker, { type: 'createWorkspace' | 'restoreWorkspace' }>,
  ): Promise<WorkspaceEntry> {
    // A failure before `running` is reported through `started`; nobody awaits `stopped` yet.
    ws.stopped.promise.catch(() => undefined);
    this.registry.add(ws);
    this.pool.send(ws.worker, message);
    await ws.started.promise;
    this.state?.markDirty();
    this.logger.info(
      { ws: ws.id, label: ws.label, ttlMs: ws.spec.ttlMs ?? null, warnings: ws.warnings, restored: message.type === 'restoreWorkspace' },
      message.type === 'restoreWorkspace' ? 'workspace restored' : 'workspace created',
    );
    for (const warning of ws.warnings) this.logger.warn({ ws: ws.id, label: ws.label }, warning);
    return ws;
  }

  /** Takes stateDir's lock, reads its snapshot and brings back what it holds. */
  async openState(stateDir: string): Promise<void> {
    if (this.orphanPolicy !== 'kill' && this.orphanPolicy !== 'adopt') {
      throw new ShumaError('INVALID_ARGUMENT', `options.orphans must be 'kill' or 'adopt' (got ${JSON.stringify(this.orphanPolicy)})`);
    }
    if (typeof stateDir !== 'string' || stateDir.length === 0) {
      throw new ShumaError('INVALID_ARGUMENT', 'options.stateDir must be a directory path');
    }
    this.stateLock = await acquireStateLock(stateDir);
    // Every process started from now on carries the mark; any that carries it now is an orphan
    // of a runtime on this stateDir that died without a shutdown.
    const mark = stateMark(stateDir);
    this.baseEnv = { ...this.baseEnv, [STATE_MARK_VARIABLE]: mark };
    const orphans = findMarkedProcesses(mark);
    const read = await readSnapshotFile(stateDir);
    const data = read.status === 'ok' && checkSnapshotData(read.data) === null ? (read.data as SnapshotData) : null;
    // 'adopt' keeps what the snapshot knows (a run of a restored actor); anything else is killed.
    const adoptable = new Set<string>();
    if (this.orphanPolicy === 'adopt' && data) {
      for (const record of data.workspaces) for (const p of record.processes) if (isSameProcess(p)) adoptable.add(p.runId);
    }
    const adoptedPids = new Set(data?.workspaces.flatMap((r) => r.processes.filter((p) => adoptable.has(p.runId)).map((p) => p.pid)) ?? []);
    const doomed = orphans.filter((p) => !adoptedPids.has(p.pid) && !isDescendantOfAny(p, adoptedPids, orphans));
    if (doomed.length > 0) {
      await killProcesses(doomed);
      this.warn(`${doomed.length} process(es) left running by a runtime that died on ${stateDir} were killed (pids ${doomed.map((p) => p.pid).join(', ')}); supervised commands start again`);
    }
    if (adoptedPids.size > 0) {
      this.warn(`${adoptedPids.size} process(es) left running by a runtime that died on ${stateDir} were adopted (pids ${[...adoptedPids].join(', ')}): watched until they exit; their output before the restart is lost`);
    }
    this.state = new StateStore(
      stateDir,
      () => collectSnapshot(this.runtimeId, this.registry, this.table, this.savedPipelines),
      this.logger,
    );
    if (read.status === 'missing') return;
    if (read.status === 'corrupt') {
      this.warn(`the snapshot in ${stateDir} could not be read (${read.reason}): it was kept as ${read.keptAs} and the runtime starts empty`);
      return;
    }
    const problem = checkSnapshotData(read.data);
    if (problem) {
      const keptAs = await keepSnapshotAside(stateDir, 'invalid');
      this.warn(`the snapshot in ${stateDir} is not a shuma state (${problem}): it was kept as ${keptAs} and the runtime starts empty`);
      return;
    }
    const restored = await restoreSnapshot(
      {
        savedPipelines: this.savedPipelines,
        warn: (message) => this.warn(message),
        restoreWorkspace: (r, lost, adopted) => this.restoreWorkspace(r, lost, adopted),
      },
      read.data as SnapshotData,
      adoptable,
    );
    this.logger.info({ stateDir, ...restored, savedPipelines: this.savedPipelines.size }, 'state restored');
  }

  private warn(message: string): void {
    this.warnings.push(message);
    this.logger.warn(message);
  }

  /** A workspace back under its own id, its actor from its persisted snapshot, its timers re-armed. */
  private async restoreWorkspace(record: PersistedWorkspace, lostKeys: string[], adopted: PersistedProcess[]): Promise<void> {
    const spec = validateWorkspaceSpec(record.spec);
    const ws = await this.prepareWorkspace(spec, record.id, record.createdAt);
    // A crashed runtime's cgroup may still hold what escaped every group: it goes too (unless adopted).
    if (adopted.length === 0) await ws.cgroup?.killAll();
    ws.persisted = record.actor;
    for (const command of record.commands) {
      const plan = await launchPlan(ws, command.spec).catch(() => unresolvedPlan(ws, command.spec));
      const firstRun = deferred<RunEntry>();
      // Nobody awaits a restored command's first run: it ran before the restart.
      firstRun.promise.catch(() => undefined);
      ws.commands.set(command.key, {
        ...plan,
        label: command.label,
        key: command.key,
        wsId: ws.id,
        policy: command.policy,
        snapshot: null,
        observers: new Set(),
        firstRun,
      });
    }
    for (const { id, spec: pipelineSpec } of record.pipelines) {
      const nodes = await Promise.all(
        pipelineSpec.nodes.map((node) => launchPlan(ws, node).catch(() => unresolvedPlan(ws, node))),
      );
      const pipeline = this.newPipelineEntry(id, ws, pipelineSpec, nodes);
      pipeline.started.resolve();
      ws.pipelines.set(id, pipeline);
      this.pipelines.set(id, pipeline);
    }
    for (const orphan of adopted) {
      const run = this.table.add(
        {
          id: orphan.runId,
          key: orphan.key,
          wsId: ws.id,
          label: orphan.label,
          pid: orphan.pid,
          restarts: orphan.restarts,
          startedAt: orphan.startedAt,
          pipelineId: orphan.pipelineId ?? undefined,
        },
        this.logBufferBytes,
      );
      ws.groups.add(orphan.pid);
      if (orphan.pipelineId) {
        const pipeline = ws.pipelines.get(orphan.pipelineId);
        pipeline?.groups.add(orphan.pid);
        pipeline?.currentRuns.push(run);
      }
      this.reaper.adopt(run, orphan.startTime);
    }
    await this.hostWorkspace(ws, {
      type: 'restoreWorkspace',
      wsId: ws.id,
      label: ws.label,
      ttlMs: spec.ttlMs ?? null,
      at: this.clock.now(),
      snapshot: record.actor,
      lostKeys,
    });
    // Saved mid-stop: its processes are gone; the stop completes now.
    if (stateName(ws.snapshot.value) === 'reaping') this.host.signalScope(ws, 'SIGKILL');
  }

  /** The workspace's own cgroup, when its spec asks for one and the machine allows it. */
  private async makeCgroup(spec: WorkspaceSpec, id: string): Promise<{ cgroup: CgroupHandle | null; warnings: string[] }> {
    if (spec.cgroup === undefined || spec.cgroup === false) return { cgroup: null, warnings: [] };
    this.cgroupSupport ??= detectCgroups();
    return createWorkspaceCgroup(this.cgroupSupport, {
      // A path the user names is theirs, from each hierarchy's root; `true` is ours, under our parent.
      parent: typeof spec.cgroup === 'string' ? '' : `shuma-${this.runtimeId}`,
      name: typeof spec.cgroup === 'string' ? spec.cgroup : id,
      ...(spec.limits?.memoryBytes !== undefined ? { memoryBytes: spec.limits.memoryBytes } : {}),
      ...(spec.limits?.nproc !== undefined ? { nproc: spec.limits.nproc } : {}),
    });
  }

  /** A caller-given id (to keep ids across restarts) must be a ULID nobody uses. */
  private checkGivenId(id: unknown): string {
    if (typeof id !== 'string' || !ULID_PATTERN.test(id)) {
      throw new ShumaError('INVALID_ARGUMENT', `id must be a ULID (26 Crockford base-32 characters, got ${JSON.stringify(id)})`);
    }
    if (this.registry.get(id)) {
      throw new ShumaError('INVALID_ARGUMENT', `id ${id} is already the id of a live workspace: ids are unique`);
    }
    return id;
  }

  async run(wsId: string, input: CommandSpec): Promise<RunEntry> {
    this.ensureOpen();
    const ws = this.workspaceEntry(wsId);
    this.ensureRunning(ws);
    const spec = validateCommandSpec(structuredCloneSpec(input));
    const plan = await launchPlan(ws, spec);
    this.ensureOpen();
    this.ensureRunning(ws);
    const command: CommandEntry = {
      ...plan,
      label: uniqueLabel(ws, plan.label, spec.label !== undefined),
      key: this.newId(),
      wsId: ws.id,
      policy: resolveRestartPolicy(spec.restart),
      snapshot: null,
      observers: new Set(),
      firstRun: deferred(),
    };
    ws.commands.set(command.key, command);
    this.toWorkspace(ws, {
      type: 'RUN',
      at: this.clock.now(),
      key: command.key,
      label: command.label,
      policy: command.policy,
    });
    try {
      return await command.firstRun.promise;
    } catch (error) {
      ws.commands.delete(command.key);
      throw error;
    }
  }

  async runPipeline(input: PipelineSpec): Promise<PipelineEntry> {
    this.ensureOpen();
    const spec = validatePipelineSpec(structuredCloneSpec(input));
    const ws = this.workspaceEntry(spec.workspace);
    this.ensureRunning(ws);
    const nodes: LaunchPlan[] = [];
    for (const [i, node] of spec.nodes.entries()) {
      try {
        nodes.push(await launchPlan(ws, node));
      } catch (error) {
        // Say which node: the same program may appear in several.
        if (error instanceof ShumaError) {
          throw new ShumaError(error.code, `nodes[${i}] (${node.label}): ${error.detail}`, {
            field: `nodes[${i}].${error.field ?? 'exec'}`,
            ...(error.osCode ? { cause: error.osCode } : {}),
          });
        }
        throw error;
      }
    }
    this.ensureOpen();
    this.ensureRunning(ws);
    const pipeline = this.newPipelineEntry(this.newId(), ws, spec, nodes);
    ws.pipelines.set(pipeline.id, pipeline);
    this.pipelines.set(pipeline.id, pipeline);
    this.toWorkspace(ws, {
      type: 'RUN_PIPELINE',
      at: this.clock.now(),
      key: pipeline.id,
      label: spec.label,
      nodeLabels: spec.nodes.map((node) => node.label),
      upstreamLabels: [...new Set(spec.edges.map((edge) => edge.from))],
      discern: spec.discern ?? 'any',
      policy: resolveRestartPolicy(spec.restart),
    });
    try {
      await pipeline.started.promise;
    } catch (error) {
      ws.pipelines.delete(pipeline.id);
      this.pipelines.delete(pipeline.id);
      throw error;
    }
    return pipeline;
  }

  private newPipelineEntry(id: string, ws: WorkspaceEntry, spec: PipelineSpec, nodes: LaunchPlan[]): PipelineEntry {
    const pipeline: PipelineEntry = {
      kind: 'pipeline',
      id,
      wsId: ws.id,
      label: spec.label,
      spec,
      nodes,
      groups: new Set(),
      hostStop: null,
      pendingSpawns: 0,
      snapshot: null,
      observers: new Set(),
      currentRuns: [],
      stopResult: null,
      started: deferred(),
      done: deferred(),
    };
    pipeline.started.promise.catch(() => undefined);
    return pipeline;
  }

  pipelineEntry(id: string): PipelineEntry {
    const pipeline = typeof id === 'string' ? this.pipelines.get(id) : undefined;
    if (!pipeline) {
      throw new ShumaError('PIPELINE_NOT_FOUND', `no pipeline has id ${JSON.stringify(id)}: it never existed or its workspace was stopped`);
    }
    return pipeline;
  }

  /** Stops one pipeline's processes only; its workspace and other commands go on. */
  async stopPipeline(id: string, graceMs: number | undefined): Promise<StopResult> {
    const grace = validateGraceMs(graceMs) ?? DEFAULT_GRACE_MS;
    const pipeline = this.pipelineEntry(id);
    const ws = this.registry.get(pipeline.wsId);
    if (ws && !pipeline.done.settled) this.toChild(ws, pipeline.id, { type: 'STOP', at: this.clock.now(), graceMs: grace });
    await pipeline.done.promise;
    return pipeline.stopResult ?? { reaped: 0, escaped: [] };
  }

  private ensureRunning(ws: WorkspaceEntry): void {
    if (!ws.started.settled && !ws.stopRequested && !ws.hostStop && !ws.failure) {
      throw new ShumaError(
        'WORKSPACE_STOPPED',
        `workspace ${ws.id} (${ws.label}) is still starting: wait for createWorkspace() to resolve before running commands in it`,
      );
    }
    if (ws.stopRequested || ws.hostStop || ws.failure || stateName(ws.snapshot.value) !== 'running') {
      throw new ShumaError(
        'WORKSPACE_STOPPED',
        `workspace ${ws.id} (${ws.label}) is ${ws.failure ? 'failed' : 'stopping'}: create a new workspace to run more commands`,
      );
    }
  }

  async stopWorkspace(wsId: string, graceMs: number | undefined, reason: StopReason): Promise<StopResult> {
    const grace = validateGraceMs(graceMs) ?? DEFAULT_GRACE_MS;
    const ws = this.registry.get(wsId);
    if (!ws) {
      throw new ShumaError(
        'WORKSPACE_NOT_FOUND',
        `workspace ${JSON.stringify(wsId)} is already stopped (or never existed): there is nothing left to stop`,
      );
    }
    ws.stopRequested = true;
    if (!ws.failure) this.toWorkspace(ws, { type: 'STOP', at: this.clock.now(), graceMs: grace, reason });
    return ws.stopped.promise;
  }

  logs(wsId: string, runId: string, stream: 'stdout' | 'stderr' | 'both', tailBytes: number): Buffer {
    const ws = this.workspaceEntry(wsId);
    const run = typeof runId === 'string' ? this.table.get(runId) : undefined;
    if (!run || run.wsId !== ws.id) {
      throw new ShumaError(
        'COMMAND_NOT_FOUND',
        `workspace ${ws.id} (${ws.label}) has no command ${JSON.stringify(runId)}: commands() lists its commands`,
      );
    }
    if (stream === 'stdout') return run.stdout.tail(tailBytes);
    if (stream === 'stderr') return run.stderr.tail(tailBytes);
    // As the original: stdout's tail, then stderr's.
    return Buffer.concat([run.stdout.tail(tailBytes), run.stderr.tail(tailBytes)]);
  }

  health(): HealthCounts {
    let alivePipelines = 0;
    for (const pipeline of this.pipelines.values()) if (!pipeline.done.settled) alivePipelines++;
    return {
      aliveWorkspaces: this.registry.size,
      aliveCommands: this.table.aliveCount,
      alivePipelines,
      activeFlows: this.flows.activeCount,
      workerRestarts: this.workerRestarts,
      spawner: this.spawner.name,
    };
  }

  stateOf(ws: WorkspaceEntry): string {
    return stateName(ws.snapshot.value);
  }

  addInspector(observer: (record: InspectionRecord) => void): () => void {
    if (typeof observer !== 'function') {
      throw new ShumaError('INVALID_ARGUMENT', 'inspect(observer) needs a function that takes an inspection record');
    }
    this.inspectors.add(observer);
    if (this.inspectors.size === 1) this.pool.broadcast({ type: 'inspect', enabled: true });
    return () => {
      if (this.inspectors.delete(observer) && this.inspectors.size === 0 && !this.closed) {
        this.pool.broadcast({ type: 'inspect', enabled: false });
      }
    };
  }

  private moveClock(time: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    const seq = ++this.clockSeq;
    return new Promise((done) => {
      this.clockAcks.set(seq, { left: this.pool.size, done });
      this.pool.broadcast({ type: 'clock', now: time, seq });
    });
  }

  async shutdown(graceMs: number | undefined): Promise<void> {
    const grace = validateGraceMs(graceMs) ?? DEFAULT_GRACE_MS;
    this.shutdownPromise ??= this.closeAll(grace);
    return this.shutdownPromise;
  }

  private async closeAll(graceMs: number): Promise<void> {
    this.closed = true;
    // Saved as it is before everything stops: the next runtime on this stateDir brings it back.
    await this.state?.freeze();
    await Promise.allSettled([...this.registry.all()].map((ws) => this.stopWorkspace(ws.id, graceMs, 'shutdown')));
    this.reaper.close();
    this.quota.close();
    if (this.cgroupSupport?.version) {
      await removeCgroupParent(this.cgroupSupport, `shuma-${this.runtimeId}`).catch((error: unknown) =>
        this.logger.warn({ err: serializeError(error) }, 'the runtime cgroup parent could not be removed'),
      );
    }
    this.detachClock?.();
    for (const pending of this.clockAcks.values()) pending.done();
    this.clockAcks.clear();
    await this.pool.close();
    await this.stateLock?.release();
    process.off('exit', this.killOnExit);
  }

  /** The process is exiting without a shutdown: no child may outlive it. */
  private killEverythingNow(): void {
    for (const pgid of [...this.registry.all()].flatMap((ws) => [...ws.groups])) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // Already gone: exactly what we want.
      }
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Chaos hook: makes the workspace's actor throw inside its worker, as a bug would. */
  injectFault(wsId: string, message: string): void {
    this.toWorkspace(this.workspaceEntry(wsId), { type: 'FAULT', message });
  }

  /** Test and benchmark hook: the threads hosting the actors. */
  get workerThreads(): ReadonlyArray<unknown> {
    return this.pool.threads;
  }

  workerStats() {
    return this.pool.stats();
  }

  /** Resolves once every actor thread serves; rejects (and cleans up) if one cannot start. */
  async ready(): Promise<void> {
    try {
      await this.pool.ready();
    } catch (error) {
      await this.shutdown(0).catch(() => undefined);
      throw new ShumaError('INTERNAL', `the actor threads could not start: ${(error as Error).message}`);
    }
  }
}

function plainExit(exit: { code: number | null; signal: string | null; status: number }) {
  return { code: exit.code, signal: exit.signal, status: exit.status };
}

/** Whether `p` descends (by parent links among `processes`) from one of `roots`. */
function isDescendantOfAny(p: ProcStat, roots: ReadonlySet<number>, processes: readonly ProcStat[]): boolean {
  const parentOf = new Map(processes.map((q) => [q.pid, q.ppid]));
  for (let pid = p.ppid, hops = 0; pid > 1 && hops < 64; hops++) {
    if (roots.has(pid)) return true;
    pid = parentOf.get(pid) ?? 1;
  }
  return false;
}
