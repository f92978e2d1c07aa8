import type { PlacementInfo } from '../../protocol/placement-spec.js';
import type { SerializedError } from '../../protocol/errors.js';
import type { ActorSnapshot, PlainValue } from '../../protocol/actor-records.js';
import type { Signal } from '../../protocol/host-requests.js';
import type { PipelineSpec } from '../../protocol/pipeline-spec.js';
import type { CommandSpec, ResolvedRestartPolicy, WorkspaceSpec } from '../../protocol/specs.js';
import type { Deferred } from '../processes/deferred.js';
import type { ProcStat } from '../processes/proc.js';
import type { RunEntry } from '../processes/process-table.js';
import type { CommandMap } from './command-map.js';

// What the main thread knows of each workspace and command: the specs, the mirror of the
// actors' snapshots (kept current by the workers), and the host's side of a stop.

export interface StopResult {
  /** Processes (runs) that were alive when the stop began and were reaped by it. */
  reaped: number;
  /** Descendants that had left the workspace's process groups and were killed one by one. */
  escaped: number[];
}

export interface HostStop {
  lastSignal: Signal;
  aliveAtStop: number;
  /** Descendants seen when the stop began: any that left the groups is killed at the end. */
  descendants: ProcStat[];
}

/** What the runtime uses of a workspace's cgroup (src/host/cgroups.ts makes them). */
export interface CgroupHandle {
  readonly procsFiles: readonly string[];
  sample(): { memoryBytes: number | null; cpuUsec: number | null; pids: number | null; forksRefused: number | null };
  oomKills(): number;
  pids(): number[];
  killAll(): Promise<void>;
  remove(): Promise<void>;
}

/** What a stop acts on: a whole workspace, or one pipeline in it. */
export interface StopScope {
  readonly kind: 'workspace' | 'pipeline';
  readonly id: string;
  readonly wsId: string;
  /** Process groups started in it and not yet seen empty (each run leads its own group). */
  readonly groups: Set<number>;
  hostStop: HostStop | null;
  /** Spawns under way: a stop is not over while one may still produce a process. */
  pendingSpawns: number;
}

/** A command as it will be started: spec checked, program and cwd resolved. */
export interface LaunchPlan {
  readonly label: string;
  readonly spec: CommandSpec;
  readonly file: string;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
}

export interface PipelineExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  status: number;
}

export interface PipelineResult {
  /** Whether the pipeline succeeded by its `discern` rule (false once stopped or given up). */
  ok: boolean;
  /** The last attempt's exit of every node that ran, by label. */
  exits: Record<string, PipelineExit>;
  restarts: number;
  /** The pipeline machine's final state: succeeded, failed, gaveUp or stopped. */
  state: string;
}

export interface PipelineEntry extends StopScope {
  readonly kind: 'pipeline';
  readonly label: string;
  readonly spec: PipelineSpec;
  readonly nodes: readonly LaunchPlan[];
  snapshot: ActorSnapshot | null;
  readonly observers: Set<(snapshot: ActorSnapshot) => void>;
  /** The runs of the current attempt, in node order. */
  currentRuns: RunEntry[];
  /** rest_for_one where it can splice: the runtime holds every node's stdin (host/flows/flow-splice.ts). */
  readonly splices?: boolean;
  /** Set by the reaper when a stop of this pipeline left nothing running. */
  stopResult: StopResult | null;
  readonly started: Deferred<void>;
  readonly done: Deferred<PipelineResult>;
}

export interface CommandEntry {
  readonly key: string;
  readonly wsId: string;
  readonly label: string;
  readonly spec: CommandSpec;
  readonly policy: ResolvedRestartPolicy;
  /** Resolved and checked once, before the first run. */
  readonly file: string;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  snapshot: ActorSnapshot | null;
  readonly observers: Set<(snapshot: ActorSnapshot) => void>;
  /** The first run of the command's current actor (a restart of an ended command makes a new one). */
  firstRun: Deferred<RunEntry>;
}

export interface WorkspaceEntry extends StopScope {
  readonly kind: 'workspace';
  readonly label: string;
  readonly spec: WorkspaceSpec;
  readonly cwd: string;
  /** The environment every command starts from: the runtime's, then the workspace's. */
  readonly env: Readonly<Record<string, string>>;
  readonly warnings: string[];
  /** Where its processes run: the kind of its placement (src/host/placement), `local` here. */
  readonly placementKind: string;
  /** What it was placed on (kept current by the placement: a Slurm job's live nodes). */
  readonly placement: PlacementInfo;
  /** The workspace's own cgroup, when one was asked and could be made. */
  readonly cgroup: CgroupHandle | null;
  /** Kernel OOM kills already attributed to a run. */
  oomKillsSeen: number;
  readonly worker: number;
  readonly createdAt: number;
  snapshot: ActorSnapshot;
  /** The actor's latest persisted snapshot, children included: what a restore or a re-hosting starts from. */
  persisted: PlainValue | null;
  /**
   * Counts changes to what the snapshot file holds of it (persistence/collect.ts): bumped by
   * every event the host tells its actor, every exit the reaper sees (told later, on a standing
   * order), every message of its actor, and every change of its commands and pipelines. A write packs its record again only when the count moved
   * (persistence/snapshot-encoder.ts); what changes it without passing there is not saved.
   */
  changes: number;
  readonly observers: Set<(snapshot: ActorSnapshot) => void>;
  readonly commands: CommandMap<CommandEntry>;
  readonly pipelines: Map<string, PipelineEntry>;
  readonly started: Deferred<void>;
  readonly stopped: Deferred<StopResult>;
  /** A stop was asked (by the user, the TTL, a shutdown): nothing new may start. */
  stopRequested: boolean;
  /** Set by the reaper when nothing of the workspace is left; reported once the actor stopped. */
  stopResult: StopResult | null;
  failure: SerializedError | null;
}

export class Registry {
  private readonly workspaces = new Map<string, WorkspaceEntry>();
  /**
   * Hosted while their placement is still being prepared (a Slurm allocation under way,
   * core/create-while-placing.ts): found by id (their actor's messages, their stop), but neither
   * listed, nor counted, nor saved until `placed()`.
   */
  private readonly placing = new Map<string, WorkspaceEntry>();

  add(entry: WorkspaceEntry): void {
    this.workspaces.set(entry.id, entry);
  }

  addPlacing(entry: WorkspaceEntry): void {
    this.placing.set(entry.id, entry);
  }

  /** Its placement is ready: listed from now on. */
  placed(entry: WorkspaceEntry): void {
    if (this.placing.delete(entry.id)) this.workspaces.set(entry.id, entry);
  }

  get(wsId: string): WorkspaceEntry | undefined {
    return this.workspaces.get(wsId) ?? this.placing.get(wsId);
  }

  delete(wsId: string): void {
    if (!this.workspaces.delete(wsId)) this.placing.delete(wsId);
  }

  /** Still being placed: nothing can run in it yet (core/guards.ts). */
  isPlacing(wsId: string): boolean {
    return this.placing.has(wsId);
  }

  /** Those still being placed: a shutdown stops them too, a lost worker's are re-hosted too. */
  allPlacing(): IterableIterator<WorkspaceEntry> {
    return this.placing.values();
  }

  all(): IterableIterator<WorkspaceEntry> {
    return this.workspaces.values();
  }

  get size(): number {
    return this.workspaces.size;
  }
}
