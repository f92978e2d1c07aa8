import { availableParallelism } from 'node:os';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { monotonicFactory } from 'ulid';
import { Reaper } from '../actors/reaper.js';
import { WorkerPool } from '../actors/worker-pool.js';
import { ShumaError, serializeError } from '../protocol/errors.js';
import type {
  ActorSnapshot,
  CommandEvent,
  FromWorker,
  InspectionRecord,
  StopReason,
  WorkspaceEvent,
} from '../protocol/messages.js';
import { DEFAULT_GRACE_MS, type CommandSpec, type WorkspaceSpec } from '../protocol/specs.js';
import {
  resolveRestartPolicy,
  validateCommandSpec,
  validateGraceMs,
  validateWorkspaceSpec,
} from '../protocol/validate-spec.js';
import { systemClock, type RuntimeClock } from './clock.js';
import { deferred } from './deferred.js';
import { HostActor } from './host-actor.js';
import { NodeSpawner } from './node-spawner.js';
import { ProcessTable, type RunEntry } from './process-table.js';
import { Registry, type CommandEntry, type StopResult, type WorkspaceEntry } from './registry.js';
import { checkCwd, resolveExecutable } from './spawn-check.js';
import type { Spawner } from './spawner.js';
import { unsupportedWarnings } from './workspace-warnings.js';

export interface RuntimeOptions {
  /** Worker threads hosting the actors (default: 2, or 1 on a single core). */
  workers?: number;
  /** Snapshot and saved pipelines live here; omitted = memory only. */
  stateDir?: string;
  /** Default: a pino logger that stays silent unless SHUMA_LOG_LEVEL is set. */
  logger?: Logger;
  /** Ring buffer size per captured stream (default 1 MiB). */
  logBufferBytes?: number;
  /** Every actor's inspection events, as plain records. */
  inspect?: (record: InspectionRecord) => void;
  /** Where time comes from; tests pass a ManualClock from 'shuma/testing'. */
  clock?: RuntimeClock;
}

export interface HealthCounts {
  aliveWorkspaces: number;
  aliveCommands: number;
  alivePipelines: number;
  activeFlows: number;
}

export interface CreateWorkspaceOptions {
  /** Recreate a workspace under the ULID it had before (as the original's `create_with_id`). */
  id?: string;
}

const DEFAULT_LOG_BUFFER_BYTES = 1024 * 1024;
const ULID_PATTERN = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;
const RUNTIME_OPTION_FIELDS = ['workers', 'stateDir', 'logger', 'logBufferBytes', 'inspect', 'clock'];

function checkOptions(options: RuntimeOptions): void {
  for (const key of Object.keys(options)) {
    if (!RUNTIME_OPTION_FIELDS.includes(key)) {
      throw new ShumaError('INVALID_ARGUMENT', `options.${key} is not a runtime option; known: ${RUNTIME_OPTION_FIELDS.join(', ')}`);
    }
  }
  const { workers, logBufferBytes } = options;
  if (workers !== undefined && (!Number.isSafeInteger(workers) || workers < 1 || workers > 64)) {
    throw new ShumaError('INVALID_ARGUMENT', `options.workers must be a whole number from 1 to 64 (got ${String(workers)})`);
  }
  if (logBufferBytes !== undefined && (!Number.isSafeInteger(logBufferBytes) || logBufferBytes < 0)) {
    throw new ShumaError('INVALID_ARGUMENT', `options.logBufferBytes must be a whole number >= 0 (got ${String(logBufferBytes)})`);
  }
  if (options.inspect !== undefined && typeof options.inspect !== 'function') {
    throw new ShumaError('INVALID_ARGUMENT', 'options.inspect must be a function that takes an inspection record');
  }
}

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
  private readonly pool: WorkerPool;
  private readonly host: HostActor;
  private readonly reaper: Reaper;
  private readonly newId = monotonicFactory();
  private readonly inspectors = new Set<(record: InspectionRecord) => void>();
  private readonly clockAcks = new Map<number, { left: number; done: () => void }>();
  private clockSeq = 0;
  private readonly detachClock: (() => void) | undefined;
  private readonly baseEnv: Readonly<Record<string, string>>;
  private closed = false;
  private shutdownPromise: Promise<void> | null = null;
  private readonly killOnExit = () => this.killEverythingNow();

  constructor(options: RuntimeOptions, spawner: Spawner = new NodeSpawner()) {
    checkOptions(options);
    this.logger = options.logger ?? pino({ name: 'shuma', level: process.env.SHUMA_LOG_LEVEL ?? 'silent' });
    this.logBufferBytes = options.logBufferBytes ?? DEFAULT_LOG_BUFFER_BYTES;
    this.clock = options.clock ?? systemClock;
    this.baseEnv = Object.fromEntries(
      Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );
    if (options.stateDir !== undefined) {
      this.logger.warn({ stateDir: options.stateDir }, 'stateDir is accepted but snapshots are not written by this version');
    }
    const now = () => this.clock.now();
    const toCommand = (ws: WorkspaceEntry, key: string, event: CommandEvent) =>
      this.pool.send(ws.worker, { type: 'commandEvent', wsId: ws.id, key, event });
    this.reaper = new Reaper({
      registry: this.registry,
      table: this.table,
      logger: this.logger,
      now,
      toCommand,
      onGroupsEmpty: (ws, result) => this.onGroupsEmpty(ws, result),
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
      toCommand,
    });
    this.pool = new WorkerPool({
      size: options.workers ?? Math.min(2, availableParallelism()),
      manualClockStart: this.clock.manual ? this.clock.now() : null,
      onMessage: (_index, message) => this.receive(message),
      onWorkerLost: (index, error) =>
        this.logger.error({ worker: index, err: serializeError(error) }, 'an actor worker thread died'),
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
      case 'commandSnapshot': {
        const command = this.registry.get(message.wsId)?.commands.get(message.key);
        if (!command) return;
        command.snapshot = message.snapshot;
        for (const observer of command.observers) this.notify(observer, message.snapshot);
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
    if (!ws.started.settled && stateName(snapshot.value) === 'running') ws.started.resolve();
    if (snapshot.status === 'done') this.finish(ws);
  }

  private onActorError(ws: WorkspaceEntry, error: ReturnType<typeof serializeError>): void {
    if (ws.failure) return;
    ws.failure = error;
    this.logger.error({ ws: ws.id, label: ws.label, err: error }, 'workspace actor failed; killing its processes');
    const failure = new ShumaError('ACTOR_FAILED', `workspace ${ws.id} (${ws.label}) failed: ${error.message}`);
    ws.started.reject(failure);
    for (const command of ws.commands.values()) command.firstRun.reject(failure);
    // Nothing supervises these processes any more: none may outlive the actor.
    this.host.signalWorkspace(ws, 'SIGKILL');
  }

  private onGroupsEmpty(ws: WorkspaceEntry, result: StopResult): void {
    ws.stopResult = result;
    if (ws.failure) this.finish(ws);
    else this.toWorkspace(ws, { type: 'GROUPS_EMPTY', at: this.clock.now(), reaped: result.reaped });
  }

  /** The workspace actor reached `stopped` (or failed and was reaped): forget it. */
  private finish(ws: WorkspaceEntry): void {
    if (this.registry.get(ws.id) !== ws) return;
    const result = ws.stopResult ?? { reaped: 0, escaped: [] };
    const gone = new ShumaError('WORKSPACE_STOPPED', `workspace ${ws.id} (${ws.label}) stopped before the command started`);
    for (const command of ws.commands.values()) command.firstRun.reject(gone);
    this.registry.delete(ws.id);
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
    const cwd = await checkCwd(spec.cwd ?? process.cwd(), 'cwd', 'INVALID_SPEC');
    this.ensureOpen();
    if (options.id !== undefined) this.checkGivenId(options.id);
    const ws: WorkspaceEntry = {
      id,
      label: spec.label,
      spec,
      cwd,
      env: { ...this.baseEnv, ...spec.env },
      warnings: unsupportedWarnings(spec),
      worker: this.pool.place(),
      createdAt: this.clock.now(),
      snapshot: { value: 'created', status: 'active', context: {} },
      observers: new Set(),
      commands: new Map(),
      started: deferred(),
      stopped: deferred(),
      stopRequested: false,
      hostStop: null,
      stopResult: null,
      pendingSpawns: 0,
      failure: null,
    };
    // A failure before `running` is reported through `started`; nobody awaits `stopped` yet.
    ws.stopped.promise.catch(() => undefined);
    this.registry.add(ws);
    this.pool.send(ws.worker, {
      type: 'createWorkspace',
      wsId: ws.id,
      label: ws.label,
      ttlMs: spec.ttlMs ?? null,
      at: ws.createdAt,
    });
    await ws.started.promise;
    this.logger.info({ ws: ws.id, label: ws.label, ttlMs: spec.ttlMs ?? null, warnings: ws.warnings }, 'workspace created');
    for (const warning of ws.warnings) this.logger.warn({ ws: ws.id, label: ws.label }, warning);
    return ws;
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
    const cwd = await checkCwd(spec.cwd === undefined ? ws.cwd : path.resolve(ws.cwd, spec.cwd), 'cwd');
    const env = { ...ws.env, ...spec.env };
    const file = await resolveExecutable(spec.exec, cwd, env.PATH);
    this.ensureOpen();
    this.ensureRunning(ws);
    const command: CommandEntry = {
      key: this.newId(),
      wsId: ws.id,
      label: spec.label ?? path.basename(spec.exec),
      spec,
      policy: resolveRestartPolicy(spec.restart),
      file,
      cwd,
      env,
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

  private ensureRunning(ws: WorkspaceEntry): void {
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
    return { aliveWorkspaces: this.registry.size, aliveCommands: this.table.aliveCount, alivePipelines: 0, activeFlows: 0 };
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
    await Promise.allSettled([...this.registry.all()].map((ws) => this.stopWorkspace(ws.id, graceMs, 'shutdown')));
    this.reaper.close();
    this.detachClock?.();
    for (const pending of this.clockAcks.values()) pending.done();
    this.clockAcks.clear();
    await this.pool.close();
    process.off('exit', this.killOnExit);
  }

  /** The process is exiting without a shutdown: no child may outlive it. */
  private killEverythingNow(): void {
    for (const pgid of this.table.allGroups()) {
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
}

/** A private copy of a user's spec: later changes to their object must not reach us. */
function structuredCloneSpec<T>(spec: T): T {
  if (typeof spec !== 'object' || spec === null) return spec;
  try {
    return structuredClone(spec);
  } catch {
    throw new ShumaError('INVALID_SPEC', 'spec must be plain data (strings, numbers, booleans, arrays, objects): it held a function or a class instance');
  }
}
