import type { AnyActorRef } from 'xstate';
import { flatCommandContext, nestedCommandContext, type CommandContext } from '../machines/command-context.js';

// A command actor holds what rarely changes in nested records (machines/command-context.ts);
// everything outside the worker (the main thread's mirror, why(), the inspector, the snapshot
// file) sees its context flat, as it always was. Flattened on the way out, nested on the way in.

/** A snapshot's context as observers see it. */
export function observedContext(machineId: unknown, context: unknown): unknown {
  return machineId === 'command' && context ? flatCommandContext(context as CommandContext) : context;
}

/** A child's persisted snapshot as the snapshot file holds it. */
export function persistedSnapshotOf(child: AnyActorRef, machineId: unknown): unknown {
  const snapshot = child.getPersistedSnapshot() as { context?: unknown };
  if (machineId !== 'command' || !snapshot.context) return snapshot;
  return { ...snapshot, context: flatCommandContext(snapshot.context as CommandContext) };
}

/** A command's persisted snapshot from the file (flat) as its machine restores it. */
export function restorableCommand(snapshot: unknown): unknown {
  const persisted = snapshot as { context?: Record<string, unknown> } | null;
  if (!persisted?.context || typeof persisted.context.given === 'object') return snapshot;
  return { ...persisted, context: nestedCommandContext(persisted.context) };
}
