import { newGroup } from '../machines/group.js';

// A persisted snapshot from an older shuma, brought to the shape today's machines expect
// before XState restores it.

/** A snapshot saved before workspaces had a group context gets an empty one (one_for_one, no intensity). */
export function withGroup(restored: unknown): unknown {
  const snapshot = restored as { context?: { group?: unknown } };
  if (!snapshot.context || snapshot.context.group !== undefined) return restored;
  return { ...snapshot, context: { ...snapshot.context, group: newGroup(null) } };
}
