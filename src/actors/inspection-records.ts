import type { AnyActorRef, InspectionEvent } from 'xstate';
import type { ActorSnapshot, InspectionRecord, PendingTimer, PlainValue, StateValue } from '../protocol/actor-records.js';
import { serializeError } from '../protocol/errors.js';
import { pendingTimers } from '../machines/pending-timers.js';
import { observedContext } from './command-contexts.js';
import { toPlain } from './plain.js';

// XState's inspection events hold actor refs, functions and live snapshots. These records
// are what crosses the thread: plain data, one per inspection event.

export function machineIdOf(ref: AnyActorRef | undefined): string | null {
  const logic = (ref as { logic?: { id?: unknown } } | undefined)?.logic;
  return typeof logic?.id === 'string' ? logic.id : null;
}

interface SnapshotLike {
  /** XState's machine snapshots name their machine: a command's context is seen flat. */
  machine?: { id?: unknown };
  value?: unknown;
  status?: unknown;
  context?: unknown;
  error?: unknown;
}

export function toActorSnapshot(snapshot: SnapshotLike): ActorSnapshot {
  const status = snapshot.status;
  const plain: ActorSnapshot = {
    value: (toPlain(snapshot.value) ?? '') as StateValue,
    status: status === 'done' || status === 'error' || status === 'stopped' ? status : 'active',
    context: (toPlain(observedContext(snapshot.machine?.id, snapshot.context)) ?? {}) as { [key: string]: PlainValue },
  };
  if (snapshot.error !== undefined) plain.error = serializeError(snapshot.error);
  return plain;
}

function stateNodePath(node: { id?: unknown }): string {
  return typeof node.id === 'string' ? node.id : '?';
}

export function toInspectionRecord(rootId: string, event: InspectionEvent, at: number): InspectionRecord {
  const ref = event.actorRef as AnyActorRef;
  const base = { at, rootId, actorId: ref.id, machine: machineIdOf(ref) };
  switch (event.type) {
    case '@xstate.actor':
      return { kind: 'actor', ...base };
    case '@xstate.event':
      return {
        kind: 'event',
        ...base,
        sourceId: (event.sourceRef as AnyActorRef | undefined)?.id ?? null,
        event: toPlain(event.event) as { [key: string]: PlainValue },
      };
    case '@xstate.snapshot': {
      const snapshot = toActorSnapshot(event.snapshot as SnapshotLike);
      return {
        kind: 'snapshot',
        ...base,
        event: toPlain(event.event) as { [key: string]: PlainValue },
        snapshot,
        timers: pendingTimers(snapshot),
      };
    }
    case '@xstate.microstep':
      return {
        kind: 'microstep',
        ...base,
        event: toPlain(event.event) as { [key: string]: PlainValue },
        snapshot: toActorSnapshot(event.snapshot as SnapshotLike),
        transitions: event._transitions.map((t) => ({
          source: stateNodePath(t.source),
          targets: (t.target ?? []).map(stateNodePath),
          eventType: t.eventType,
        })),
      };
    case '@xstate.action':
      return {
        kind: 'action',
        ...base,
        action: { type: event.action.type, params: toPlain(event.action.params) },
      };
    default:
      return { kind: 'event', ...base };
  }
}
