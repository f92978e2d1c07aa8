// Actor snapshots and inspection records as plain records: what crosses from the workers to
// the host's mirror, the inspector and the persisted snapshot file.
import type { SerializedError } from './errors.js';

export type PlainValue = string | number | boolean | null | PlainValue[] | { [key: string]: PlainValue };
export type StateValue = string | { [key: string]: StateValue };

export interface ActorSnapshot {
  value: StateValue;
  status: 'active' | 'done' | 'error' | 'stopped';
  context: { [key: string]: PlainValue };
  error?: SerializedError;
}

export type InspectionKind = 'actor' | 'event' | 'snapshot' | 'microstep' | 'action';

export interface PendingTimer {
  /** The delay's name in the machine: 'ttl', 'backoff' or 'grace'. */
  name: string;
  deadline: number;
}

export interface InspectionRecord {
  kind: InspectionKind;
  /** Epoch ms on the worker's clock when the record was made. */
  at: number;
  /** The workspace whose actor tree this record belongs to. */
  rootId: string;
  /** The actor's own id: the workspace id, or the key of a command or pipeline actor. */
  actorId: string;
  /** Which machine runs in that actor: 'workspace' | 'command' | 'pipeline'. */
  machine: string | null;
  /** On snapshot records: the actor's pending timers, as absolute deadlines (epoch ms). */
  timers?: PendingTimer[];
  sourceId?: string | null;
  event?: { [key: string]: PlainValue };
  snapshot?: ActorSnapshot;
  action?: { type: string; params: PlainValue };
  transitions?: Array<{ source: string; targets: string[]; eventType: string }>;
}
