import { DEFAULT_KEEP_FINISHED, forgetOldFinished } from './finished-forget.js';
import { pino, type Logger } from 'pino';
import { monotonicFactory } from 'ulid';
import { ShumaError, serializeError } from '../../protocol/errors.js';
import type { InspectionRecord } from '../../protocol/actor-records.js';
import type { ChildEvent, StopReason, WorkspaceEvent } from '../../protocol/machine-events.js';
import type { PipelineSpec } from '../../protocol/pipeline-spec.js';
import { DEFAULT_GRACE_MS, type CommandSpec, type WorkspaceSpec } from '../../protocol/specs.js';
import { stateName } from '../../protocol/state-value.js';
import { validateGraceMs } from '../../protocol/validate-spec.js';
import { FlowHub } from '../flows/flow-hub.js';
import { pumpFactoryFor } from '../flows/native-pump.js';
import type { StateLock } from '../persistence/state-lock.js';
import type { StateStore } from '../persistence/state-store.js';
import type { Placement } from '../placement/placement.js';
import { ProcessTable, type RunEntry } from '../processes/process-table.js';
import { Registry, type PipelineEntry, type StopResult, type WorkspaceEntry } from '../registry/registry.js';
import { createSpawner } from '../spawn/choose-spawner.js';
import type { Spawner } from '../spawn/spawner.js';
import { systemClock, type RuntimeClock } from './clock.js';
import { commandLogs, type LogQuery } from './command-logs.js';
import { runCommands, runPipeline, stopPipeline } from './commands-and-pipelines.js';
import { ensureOpen, pipelineEntry, workspaceEntry } from './guards.js';
import { openState } from './open-state.js';
import { pooledRandom } from './pooled-random.js';
import {
  checkOptions,
  DEFAULT_LOG_BUFFER_BYTES,
  type CreateWorkspaceOptions,
  type HealthCounts,
  type RuntimeOptions,
} from './runtime-options.js';
import { closeAll, killEverythingNow } from './shutdown.js';
import type { LogFileOptions, LogFiles } from '../processes/log-files.js';
import { WhyTrails } from './why-trail.js';
import { CwdChecks } from './cwd-checks.js';
import { healthOf } from './health.js';
import { addInspector } from './inspectors.js';
import { WorkerClocks } from './worker-clocks.js';
import { createWorkspace, runtimeEnv, stopWorkspace } from './workspace-lifecycle.js';
import { wireCommandControl, wirePlacements, wirePool, wireProbes, wireQuota, type WiredCore } from './part-wiring.js';
import type { CommandControl } from './command-control.js';
import type { ProbeRunner } from '../probes/probe-runner.js';
import type { QuotaActor } from '../main-actors/quota-actor.js';
import type { Placements } from '../placement/placements.js';
import type { WorkerPool } from '../workers/worker-pool.js';
import { noteSent } from './orders-in-flight.js';

export type { CreateWorkspaceOptions, HealthCounts, RuntimeOptions };

/**
 * The runtime core: its parts composed (registry, process table, worker pool, placements with
 * their host and reaper actors, quota actor, flows, why trails), wired to each other by
 * part-wiring.ts. Each job lives in a file of its own in this folder; the methods here are the
 * entry points the facade calls.
 */
export class RuntimeCore implements WiredCore {
  readonly logger: Logger;
  readonly logBufferBytes: number;
  readonly keepFinished: number;
  readonly clock: RuntimeClock;
  readonly registry = new Registry();
  readonly table = new ProcessTable();
  readonly pipelines = new Map<string, PipelineEntry>();
  readonly savedPipelines = new Map<string, PipelineSpec>();
  readonly pool: WorkerPool;
  readonly placements: Placements;
  readonly quota: QuotaActor;
  readonly flows: FlowHub;
  readonly probes: ProbeRunner;
  readonly why = new WhyTrails();
  readonly cwdChecks = new CwdChecks();
  readonly spawner: Spawner;
  readonly newId = monotonicFactory(pooledRandom());
  readonly runtimeId = this.newId();
  readonly warnings: string[] = [];
  readonly orphanPolicy: 'kill' | 'adopt';
  readonly inspectors = new Set<(record: InspectionRecord) => void>();
  baseEnv: Readonly<Record<string, string>>;
  state: StateStore | null = null;
  logFiles: LogFiles | null = null;
  readonly logFileOptions: LogFileOptions | false;
  stateLock: StateLock | null = null;
  closed = false;
  workerRestarts = 0;
  private readonly detachClock: (() => void) | undefined;
  private shutdownPromise: Promise<void> | null = null;
  private readonly killOnExit = () => killEverythingNow(this);
  /** Stop, restart and remove of one command. */
  readonly commandControl: CommandControl;
  readonly clocks: WorkerClocks;

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
    this.keepFinished = options.keepFinished ?? DEFAULT_KEEP_FINISHED;
    this.clock = options.clock ?? systemClock;
    this.orphanPolicy = options.orphans ?? 'kill';
    this.logFileOptions = options.logFiles ?? {};
    this.baseEnv = runtimeEnv();
    const now = () => this.clock.now();
    this.flows = new FlowHub(this.logger, now, pumpFactoryFor(spawner));
    this.probes = wireProbes(this, now);
    this.placements = wirePlacements(this, spawner, now, options.slurm);
    this.quota = wireQuota(this, now, options);
    this.pool = wirePool(this, options);
    this.commandControl = wireCommandControl(this, now);
    if (options.inspect) this.inspectors.add(options.inspect);
    if (this.inspectors.size > 0) this.pool.broadcast({ type: 'inspect', enabled: true });
    this.clocks = new WorkerClocks(this.pool);
    this.detachClock = this.clock.onAdvance?.((time) => (this.closed ? Promise.resolve() : this.clocks.move(time)));
    process.on('exit', this.killOnExit);
  }

  // ── what the jobs share ──────────────────────────────────────────────────────────

  placementOf(ws: WorkspaceEntry): Placement {
    return this.placements.get(ws.placementKind) ?? this.placements.local;
  }

  toWorkspace(ws: WorkspaceEntry, event: WorkspaceEvent): void {
    // What the host tells an actor it knows first (a spawn, an exit): the snapshot's record moved.
    ws.changes++;
    noteSent(ws, event);
    this.pool.send(ws.worker, { type: 'workspaceEvent', wsId: ws.id, event });
  }

  toChild(ws: WorkspaceEntry, key: string, event: ChildEvent): void {
    ws.changes++;
    noteSent(ws, event, key);
    this.pool.send(ws.worker, { type: 'childEvent', wsId: ws.id, key, event });
  }

  warn(message: string): void {
    // A fault that repeats is one warning: the list must not grow without end.
    if (!this.warnings.includes(message)) this.warnings.push(message);
    this.logger.warn(message);
  }

  /**
   * Children die with the runtime (PR_SET_PDEATHSIG, and the 'exit' hook) unless a stateDir with
   * orphans 'adopt' means a next runtime will take them over: see docs/reliability.md.
   */
  get childrenDieWithRuntime(): boolean {
    return !(this.state !== null && this.orphanPolicy === 'adopt');
  }

  notify<T>(observer: (value: T) => void, value: T): void {
    try {
      observer(value);
    } catch (error) {
      // An observer's bug must not stop the others, nor the runtime.
      this.logger.error({ err: serializeError(error) }, 'an observer threw');
    }
  }

  // ── the public operations (the facade's entry points) ─────────────────────────────

  ensureOpen(): void {
    ensureOpen(this);
  }

  workspaceEntry(wsId: string): WorkspaceEntry {
    return workspaceEntry(this, wsId);
  }

  pipelineEntry(id: string): PipelineEntry {
    return pipelineEntry(this, id);
  }

  createWorkspace(input: WorkspaceSpec, options: CreateWorkspaceOptions = {}): Promise<WorkspaceEntry> {
    return createWorkspace(this, input, options);
  }

  stopWorkspace(wsId: string, graceMs: number | undefined, reason: StopReason): Promise<StopResult> {
    return stopWorkspace(this, wsId, graceMs, reason);
  }

  openState(stateDir: string): Promise<void> {
    return openState(this, stateDir);
  }

  async run(wsId: string, input: CommandSpec): Promise<RunEntry> {
    const [run] = await runCommands(this, wsId, [input], false);
    this.forgetOldFinished(wsId);
    return run!;
  }

  /** Commands declared together: their dependencies may name each other in any order. */
  async runAll(wsId: string, inputs: readonly CommandSpec[]): Promise<RunEntry[]> {
    const runs = await runCommands(this, wsId, inputs, true);
    this.forgetOldFinished(wsId);
    return runs;
  }

  async runPipeline(input: PipelineSpec): Promise<PipelineEntry> {
    const pipeline = await runPipeline(this, input);
    this.forgetOldFinished(pipeline.wsId);
    return pipeline;
  }

  /** Each new command or pipeline may push the oldest finished ones past the bound. */
  private forgetOldFinished(wsId: string): void {
    const ws = this.registry.get(wsId);
    if (ws) forgetOldFinished(this, ws, (key) => this.commandControl.isRestarting(key));
  }

  stopPipeline(id: string, graceMs: number | undefined): Promise<StopResult> {
    return stopPipeline(this, id, graceMs);
  }

  logs(wsId: string, name: string, query: LogQuery): Promise<Buffer> {
    return commandLogs(this, this.commandControl, wsId, name, query);
  }

  health(): HealthCounts {
    return healthOf(this, this.workerRestarts);
  }

  stateOf(ws: WorkspaceEntry): string {
    return stateName(ws.snapshot.value);
  }

  statsHistory(wsId: string, tail: number) {
    const ws = this.registry.get(wsId);
    return ws ? this.quota.history(ws, tail) : [];
  }

  addInspector(observer: (record: InspectionRecord) => void): () => void {
    return addInspector(this, observer);
  }

  async shutdown(graceMs: number | undefined): Promise<void> {
    const grace = validateGraceMs(graceMs) ?? DEFAULT_GRACE_MS;
    return (this.shutdownPromise ??= closeAll(this, grace).finally(() => {
      this.detachClock?.();
      process.off('exit', this.killOnExit);
    }));
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
