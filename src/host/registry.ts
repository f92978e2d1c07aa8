import type { SerializedError } from '../protocol/errors.js';
import type { ActorSnapshot, Signal } from '../protocol/messages.js';
import type { CommandSpec, ResolvedRestartPolicy, WorkspaceSpec } from '../protocol/specs.js';
import type { Deferred } from './deferred.js';
import type { ProcStat } from './proc.js';
import type { RunEntry } from './process-table.js';

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
  readonly firstRun: Deferred<RunEntry>;
}

export interface WorkspaceEntry {
  readonly id: string;
  readonly label: string;
  readonly spec: WorkspaceSpec;
  readonly cwd: string;
  /** The environment every command starts from: the runtime's, then the workspace's. */
  readonly env: Readonly<Record<string, string>>;
  readonly warnings: string[];
  readonly worker: number;
  readonly createdAt: number;
  snapshot: ActorSnapshot;
  readonly observers: Set<(snapshot: ActorSnapshot) => void>;
  readonly commands: Map<string, CommandEntry>;
  readonly started: Deferred<void>;
  readonly stopped: Deferred<StopResult>;
  /** A stop was asked (by the user, the TTL, a shutdown): nothing new may start. */
  stopRequested: boolean;
  hostStop: HostStop | null;
  /** Set by the reaper when nothing of the workspace is left; reported once the actor stopped. */
  stopResult: StopResult | null;
  pendingSpawns: number;
  failure: SerializedError | null;
}

export class Registry {
  private readonly workspaces = new Map<string, WorkspaceEntry>();

  add(entry: WorkspaceEntry): void {
    this.workspaces.set(entry.id, entry);
  }

  get(wsId: string): WorkspaceEntry | undefined {
    return this.workspaces.get(wsId);
  }

  delete(wsId: string): void {
    this.workspaces.delete(wsId);
  }

  all(): IterableIterator<WorkspaceEntry> {
    return this.workspaces.values();
  }

  get size(): number {
    return this.workspaces.size;
  }
}
