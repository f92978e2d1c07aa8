import type { InspectionRecord } from '../protocol/actor-records.js';
import { ShumaError } from '../protocol/errors.js';
import { checkSavedName, validatePipelineSpec, type PipelineSpec } from '../protocol/pipeline-spec.js';
import type { WorkspaceSpec } from '../protocol/specs.js';
import { PipelineHandle, type Pipeline } from './pipeline-handle.js';
import { checkCallOptions } from '../protocol/checks.js';
import type { WorkspaceEntry } from './registry/registry.js';
import { RuntimeCore, type CreateWorkspaceOptions, type HealthCounts, type RuntimeOptions } from './core/runtime-core.js';
import { WorkspaceHandle, type Workspace } from './workspace-handle.js';
import type { ApplyOptions, ApplyReport, ApplySpec } from '../protocol/apply-spec.js';
import { applySpec } from './apply.js';

export type { RuntimeClock } from './core/clock.js';

export interface WorkspaceInfo {
  id: string;
  label: string;
  /** The workspace machine's state: `running`, `reaping`… */
  state: string;
  /** Runs started in it (each relaunch counts). */
  commands: number;
  uptimeMs: number;
}

export interface Runtime {
  /** What the runtime noticed at start and could not do as asked (e.g. a snapshot it could not read). */
  readonly warnings: readonly string[];
  createWorkspace(spec: WorkspaceSpec, options?: CreateWorkspaceOptions): Promise<Workspace>;
  workspace(id: string): Workspace | undefined;
  listWorkspaces(): Promise<WorkspaceInfo[]>;
  runPipeline(spec: PipelineSpec): Promise<Pipeline>;
  pipeline(id: string): Pipeline | undefined;
  /** Saves (or replaces) a named pipeline spec, checked first. */
  savePipeline(name: string, spec: PipelineSpec): Promise<void>;
  /** Names of the saved pipelines, sorted. */
  listSavedPipelines(): Promise<string[]>;
  getSavedPipeline(name: string): Promise<PipelineSpec | undefined>;
  dropSavedPipeline(name: string): Promise<boolean>;
  runSavedPipeline(name: string, overrides?: { workspace?: string }): Promise<Pipeline>;
  health(): Promise<HealthCounts>;
  /**
   * Converges on a spec (a spec file's content), as `kubectl apply`: creates what is missing,
   * leaves what matches, restarts or updates what differs; with `prune`, removes what the spec's
   * workspaces hold beyond it. Checked whole first: a bad spec changes nothing. Says what it did.
   */
  apply(spec: ApplySpec, options?: ApplyOptions): Promise<ApplyReport>;
  /** Empties every log file (rotated ones too, and those of workspaces that are gone); the rings stay. */
  flushLogs(): Promise<void>;
  inspect(observer: (record: InspectionRecord) => void): () => void;
  /** The inspector page's address (`createRuntime({ inspector: { port } })`), e.g. `http://127.0.0.1:43117/`; null without one. */
  readonly inspectorUrl: string | null;
  /** Stops every workspace (SIGTERM, grace, SIGKILL); no process it started is left. */
  shutdown(options?: { graceMs?: number }): Promise<void>;
}

/** A server that reads the runtime and lives as long as it (the inspector), attached from above. */
export interface AttachedServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Starts a server on the runtime once its threads serve, before any state is restored. */
export type AttachServer = (core: RuntimeCore) => Promise<AttachedServer>;

class RuntimeFacade implements Runtime {
  /** By entry, not by id: a handle goes with its workspace, and no promise waits per workspace to drop it. */
  private readonly handles = new WeakMap<WorkspaceEntry, WorkspaceHandle>();
  private readonly pipelineHandles = new Map<string, PipelineHandle>();
  inspector: AttachedServer | null = null;
  /** Applies run one at a time: each plans from what the one before left. */
  private applying: Promise<unknown> = Promise.resolve();

  constructor(readonly core: RuntimeCore) {}

  get inspectorUrl(): string | null {
    return this.inspector?.url ?? null;
  }

  get warnings(): readonly string[] {
    return this.core.warnings;
  }

  async createWorkspace(spec: WorkspaceSpec, input?: CreateWorkspaceOptions): Promise<Workspace> {
    const options = checkCallOptions(input, 'options', ['id']);
    return this.adopt(await this.core.createWorkspace(spec, options));
  }

  workspace(id: string): Workspace | undefined {
    const entry = this.core.registry.get(id);
    if (!entry) return undefined;
    return this.handles.get(entry) ?? this.adopt(entry);
  }

  /** A handle for a workspace this facade did not create: one restored from a snapshot. */
  private adopt(entry: WorkspaceEntry): WorkspaceHandle {
    const handle = new WorkspaceHandle(this.core, entry);
    this.handles.set(entry, handle);
    return handle;
  }

  async runPipeline(spec: PipelineSpec): Promise<Pipeline> {
    const entry = await this.core.runPipeline(spec);
    const handle = new PipelineHandle(this.core, entry);
    this.pipelineHandles.set(entry.id, handle);
    return handle;
  }

  pipeline(id: string): Pipeline | undefined {
    // Pipelines stay visible, finished or not, as long as their workspace lives.
    const entry = this.core.pipelines.get(id);
    if (!entry) {
      this.pipelineHandles.delete(id);
      return undefined;
    }
    let handle = this.pipelineHandles.get(id);
    if (!handle) {
      handle = new PipelineHandle(this.core, entry);
      this.pipelineHandles.set(id, handle);
    }
    return handle;
  }

  async savePipeline(name: string, spec: PipelineSpec): Promise<void> {
    this.core.ensureOpen();
    checkSavedName(name);
    this.core.savedPipelines.set(name, validatePipelineSpec(structuredClone(spec)));
  }

  async listSavedPipelines(): Promise<string[]> {
    this.core.ensureOpen();
    return [...this.core.savedPipelines.keys()].sort();
  }

  async getSavedPipeline(name: string): Promise<PipelineSpec | undefined> {
    this.core.ensureOpen();
    const spec = this.core.savedPipelines.get(checkSavedName(name));
    return spec === undefined ? undefined : structuredClone(spec);
  }

  async dropSavedPipeline(name: string): Promise<boolean> {
    this.core.ensureOpen();
    return this.core.savedPipelines.delete(checkSavedName(name));
  }

  async runSavedPipeline(name: string, input?: { workspace?: string }): Promise<Pipeline> {
    this.core.ensureOpen();
    const overrides = checkCallOptions(input, 'overrides', ['workspace']);
    const spec = this.core.savedPipelines.get(checkSavedName(name));
    if (!spec) {
      throw new ShumaError(
        'SAVED_PIPELINE_NOT_FOUND',
        `no saved pipeline is named '${name}': listSavedPipelines() shows the saved ones`,
      );
    }
    return this.runPipeline({ ...structuredClone(spec), workspace: overrides.workspace ?? spec.workspace });
  }

  async listWorkspaces(): Promise<WorkspaceInfo[]> {
    this.core.ensureOpen();
    const now = this.core.clock.now();
    return [...this.core.registry.all()].map((ws) => ({
      id: ws.id,
      label: ws.label,
      state: this.core.stateOf(ws),
      commands: this.core.table.ofWorkspace(ws.id).length,
      uptimeMs: now - ws.createdAt,
    }));
  }

  async flushLogs(): Promise<void> {
    this.core.ensureOpen();
    await this.core.logFiles?.flush();
  }

  apply(spec: ApplySpec, options?: ApplyOptions): Promise<ApplyReport> {
    const turn = this.applying.then(() => applySpec(this, this.core, spec, options));
    this.applying = turn.catch(() => undefined);
    return turn;
  }

  async health(): Promise<HealthCounts> {
    this.core.ensureOpen();
    return this.core.health();
  }

  inspect(observer: (record: InspectionRecord) => void): () => void {
    this.core.ensureOpen();
    return this.core.addInspector(observer);
  }

  async shutdown(input?: { graceMs?: number }): Promise<void> {
    const options = checkCallOptions(input, 'options', ['graceMs']);
    try {
      await this.core.shutdown(options.graceMs);
    } finally {
      await this.inspector?.close();
    }
  }
}

/**
 * Starts a runtime: its worker threads, host, reaper. Shut it down with `shutdown()`.
 * `attach` starts the inspector: it lives above this layer (src/create-runtime.ts passes it).
 */
export async function openRuntime(options: RuntimeOptions, attach: AttachServer | null): Promise<Runtime> {
  const core = new RuntimeCore(options);
  const runtime = new RuntimeFacade(core);
  // One admin round trip proves every thread is serving.
  await core.ready();
  if (attach) {
    try {
      // Before a snapshot is restored: the inspector sees every actor from its first record.
      runtime.inspector = await attach(core);
    } catch (error) {
      await core.shutdown(0).catch(() => undefined);
      throw error;
    }
  }
  if (options.stateDir !== undefined) {
    try {
      await core.openState(options.stateDir);
    } catch (error) {
      // Nothing of a runtime that could not open its state is left running.
      await runtime.shutdown({ graceMs: 0 }).catch(() => undefined);
      throw error;
    }
  }
  return runtime;
}

/** The internals behind a runtime, for shuma's own tests and benchmarks. */
export function coreOf(runtime: Runtime): RuntimeCore {
  if (!(runtime instanceof RuntimeFacade)) throw new TypeError('not a shuma runtime');
  return runtime.core;
}
