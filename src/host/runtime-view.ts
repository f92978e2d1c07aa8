import type { ActorSnapshot, InspectionRecord } from '../protocol/actor-records.js';
import type { PipelineSpec } from '../protocol/pipeline-spec.js';
import type { CommandSpec, WorkspaceSpec } from '../protocol/specs.js';
import type { WorkspaceStats } from '../protocol/stats.js';
import type { WhyEntry } from './core/why-trail.js';
import type { ExitInfo } from './processes/exit-info.js';
import { coreOf, type Runtime } from './runtime.js';

// What the CLI's daemon and the inspector read of a runtime, beyond its public API: the live
// records, read-only. Nothing here changes the runtime; what they do, they do through the
// public API (`Runtime`, `Workspace`, …).

/** A log ring as read from outside: its tail and its counts. */
export interface LogView {
  /** Bytes ever written, kept or not. */
  readonly total: number;
  readonly keptBytes: number;
  tail(bytes: number): Buffer;
}

/** One process a command or pipeline node ran. */
export interface RunView {
  readonly id: string;
  /** The supervised command's key (every relaunch shares it), or the pipeline's id. */
  readonly key: string;
  readonly wsId: string;
  readonly label: string;
  readonly pid: number;
  readonly restarts: number;
  readonly startedAt: number;
  readonly pipelineId: string | undefined;
  readonly alive: boolean;
  readonly exit: Readonly<ExitInfo> | null;
  readonly reason: 'oom' | 'exit-unknown' | 'node-lost' | 'unhealthy' | 'startTimeout' | null;
  /** The Slurm node it runs on, for a Slurm-placed workspace. */
  readonly node?: string;
  /** Its output was read to the end. */
  readonly outputEnded: boolean;
  readonly stdout: LogView;
  readonly stderr: LogView;
}

export interface CommandView {
  readonly key: string;
  readonly wsId: string;
  readonly label: string;
  readonly spec: Readonly<CommandSpec>;
  /** The command actor's latest snapshot; null before its first. */
  readonly snapshot: ActorSnapshot | null;
}

export interface PipelineView {
  readonly id: string;
  readonly wsId: string;
  readonly label: string;
  readonly spec: Readonly<PipelineSpec>;
  readonly nodes: ReadonlyArray<{ readonly label: string }>;
  readonly snapshot: ActorSnapshot | null;
  /** The runs of the current attempt, in node order. */
  readonly currentRuns: readonly RunView[];
  /** Settled once the pipeline ended. */
  readonly done: { readonly settled: boolean };
}

export interface WorkspaceView {
  readonly id: string;
  readonly label: string;
  readonly spec: Readonly<WorkspaceSpec>;
  readonly createdAt: number;
  readonly snapshot: ActorSnapshot;
  readonly warnings: readonly string[];
  readonly commands: ReadonlyMap<string, CommandView>;
  readonly pipelines: ReadonlyMap<string, PipelineView>;
}

/** The runtime as the CLI's daemon and the inspector read it. */
export interface RuntimeView {
  readonly clock: { now(): number; readonly manual?: boolean };
  readonly registry: { get(wsId: string): WorkspaceView | undefined; all(): Iterable<WorkspaceView> };
  readonly table: { get(runId: string): RunView | undefined; ofWorkspace(wsId: string): readonly RunView[] };
  /** Every pipeline of a live workspace, finished or not. */
  readonly pipelines: ReadonlyMap<string, PipelineView>;
  readonly why: { get(key: string): WhyEntry[] };
  /** The workspace machine's state: `running`, `reaping`… */
  stateOf(ws: WorkspaceView): string;
  /** The last `tail` stats samples of a live workspace; [] for one that is gone. */
  statsHistory(wsId: string, tail: number): WorkspaceStats[];
  /** Throws RUNTIME_CLOSED once the runtime was shut down. */
  ensureOpen(): void;
  addInspector(observer: (record: InspectionRecord) => void): () => void;
  /** Where the daemon and the inspector report what failed around them (an accept, a client refused). */
  readonly logger: { warn(fields: object, message: string): void };
}

/** The read-only view of a runtime made by createRuntime(). */
export function viewOf(runtime: Runtime): RuntimeView {
  return coreOf(runtime);
}
