// The wire between the host (main thread) and the workers that run the machine actors: one
// string-tagged union per direction. Everything here is plain data that survives msgpack;
// nothing is told apart by probing for a key.
import type { ActorSnapshot, InspectionRecord, PlainValue } from './actor-records.js';
import type { SerializedError } from './errors.js';
import type { HostRequest } from './host-requests.js';
import type { ChildEvent, WorkspaceEvent } from './machine-events.js';
import type { SupervisionSpec } from './supervision-spec.js';

// ── host → worker ───────────────────────────────────────────────────────────────────

export interface CreateWorkspaceMessage {
  type: 'createWorkspace';
  wsId: string;
  label: string;
  ttlMs: number | null;
  at: number;
  supervision?: SupervisionSpec | null;
  groups?: Record<string, SupervisionSpec> | null;
}
export interface WorkspaceEventMessage { type: 'workspaceEvent'; wsId: string; event: WorkspaceEvent }
/** One event for many workspace actors of the thread, each told it as if alone (a shutdown's stops). */
export interface WorkspacesEventMessage { type: 'workspacesEvent'; wsIds: string[]; event: WorkspaceEvent }
/** An event for a child actor of the workspace: a command or a pipeline, by its key. */
export interface ChildEventMessage { type: 'childEvent'; wsId: string; key: string; event: ChildEvent }
/**
 * Host a workspace actor again from its persisted snapshot (after a restart of the runtime, or
 * of a worker thread that died). Its timers are re-armed from their deadlines counted from `at`;
 * the children named in `lostKeys` lost their processes and hear RUN_LOST.
 */
export interface RestoreWorkspaceMessage {
  type: 'restoreWorkspace';
  wsId: string;
  label: string;
  ttlMs: number | null;
  at: number;
  snapshot: PlainValue;
  lostKeys: string[];
}
/** Drop a failed workspace actor from the worker's memory (one that reached its end is dropped as it tells it). */
export interface ReleaseMessage { type: 'release'; wsId: string }
/** The manual clock moved: the worker's simulated clock follows. */
export interface ClockMessage { type: 'clock'; now: number; seq: number }
export interface InspectMessage { type: 'inspect'; enabled: boolean }

export type ToWorker =
  | CreateWorkspaceMessage
  | RestoreWorkspaceMessage
  | WorkspaceEventMessage
  | WorkspacesEventMessage
  | ChildEventMessage
  | ReleaseMessage
  | ClockMessage
  | InspectMessage;

// ── worker → host ───────────────────────────────────────────────────────────────────

export interface HostRequestMessage { type: 'hostRequest'; request: HostRequest }
export interface SnapshotMessage { type: 'snapshot'; wsId: string; snapshot: ActorSnapshot }
export interface ChildSnapshotMessage {
  type: 'childSnapshot';
  wsId: string;
  key: string;
  machine: 'command' | 'pipeline';
  snapshot: ActorSnapshot;
}
/**
 * The workspace actor's persisted snapshot, sent after each change. With `children` (its
 * children's keys, in order), `snapshot.children` holds only the entries that are new or
 * changed; the others are those of the last one (persisted-delta.ts).
 */
export interface PersistedMessage {
  type: 'persisted';
  wsId: string;
  snapshot: PlainValue;
  children?: string[];
  /**
   * `snapshot.context` is left out: it is the context of the workspace's last `snapshot` message,
   * already on the main thread (a workspace's context is plain data: both copies are equal).
   */
  mirroredContext?: true;
}
/**
 * One child's persisted snapshot, sent when only it changed: it replaces
 * `children[key].snapshot` in the workspace's last whole one (XState's own layout).
 */
export interface PersistedChildMessage { type: 'persistedChild'; wsId: string; key: string; snapshot: PlainValue }
export interface ActorErrorMessage { type: 'actorError'; wsId: string; error: SerializedError }
export interface InspectionMessage { type: 'inspection'; record: InspectionRecord }
export interface ClockAckMessage { type: 'clockAck'; seq: number }

export type FromWorker =
  | HostRequestMessage
  | SnapshotMessage
  | ChildSnapshotMessage
  | PersistedMessage
  | PersistedChildMessage
  | ActorErrorMessage | InspectionMessage | ClockAckMessage;
