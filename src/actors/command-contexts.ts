import type { AnyActorRef } from 'xstate';
import { flatCommandContext, nestedCommandContext, type CommandContext } from '../machines/command-context.js';

// A command actor holds what rarely changes in nested records (machines/command-context.ts);
// everything outside the worker (the main thread's mirror, why(), the inspector, the snapshot
// file) sees its context flat, as it always was. Flattened on the way out, nested on the way in.

/** A snapshot's context as observers see it. */
export function observedContext(machineId: unknown, context: unknown): unknown {
  return machineId === 'command' && context ? flatCommandContext(context as CommandContext) : context;
}

/** What of a machine snapshot XState's persisted form is made of. */
interface MachineSnapshotLike {
  status: string;
  output?: unknown;
  error?: unknown;
  value: unknown;
  historyValue?: Record<string, unknown>;
  context?: unknown;
  children?: Record<string, unknown>;
}

/** A child's persisted snapshot as the snapshot file holds it. */
export function persistedSnapshotOf(child: AnyActorRef, machineId: unknown): unknown {
  if (machineId === 'command') {
    const persisted = commandPersisted(child.getSnapshot() as MachineSnapshotLike);
    if (persisted) return persisted;
  }
  const snapshot = child.getPersistedSnapshot() as { context?: unknown };
  if (machineId !== 'command' || !snapshot.context) return snapshot;
  return { ...snapshot, context: flatCommandContext(snapshot.context as CommandContext) };
}

/**
 * XState's persisted form of a command's snapshot, its context flat, made straight from the
 * snapshot: what `getPersistedSnapshot` gives (fields in its order; output and error undefined,
 * dropped on the wire) when the command holds no child and no history, which is always (its
 * chart has neither; its context holds no actor ref). Otherwise null: XState makes it. XState's
 * own copies every field of the snapshot by a rest pattern: ~4% of an actor thread's time per
 * `ws.run`, twice a run.
 */
function commandPersisted(snapshot: MachineSnapshotLike): Record<string, unknown> | null {
  if (snapshot.status !== 'active' || snapshot.output !== undefined || snapshot.error !== undefined || !snapshot.context) return null;
  if (!isEmptyRecord(snapshot.children) || !isEmptyRecord(snapshot.historyValue)) return null;
  return { status: snapshot.status, value: snapshot.value, historyValue: {}, context: flatCommandContext(snapshot.context as CommandContext), children: {} };
}

function isEmptyRecord(value: Record<string, unknown> | undefined): boolean {
  if (value === undefined) return true;
  for (const _ in value) return false;
  return true;
}

/** A command's persisted snapshot from the file (flat) as its machine restores it. */
export function restorableCommand(snapshot: unknown): unknown {
  const persisted = snapshot as { context?: Record<string, unknown> } | null;
  if (!persisted?.context || typeof persisted.context.given === 'object') return snapshot;
  return { ...persisted, context: nestedCommandContext(persisted.context) };
}
