import { newGroup } from '../machines/group.js';
import { restorableCommand } from './command-contexts.js';

// A persisted snapshot from an older shuma, brought to the shape today's machines expect
// before XState restores it.

/** A snapshot saved before workspaces had a group context gets an empty one (one_for_one, no intensity). */
export function withGroup(restored: unknown): unknown {
  const snapshot = restored as { context?: { group?: unknown } };
  if (!snapshot.context || snapshot.context.group !== undefined) return restored;
  return { ...snapshot, context: { ...snapshot.context, group: newGroup(null) } };
}

/** Its command children's contexts, flat in the snapshot file, as their machine holds them (command-contexts.ts). */
export function withCommandsNested(restored: unknown): unknown {
  const snapshot = restored as { children?: Record<string, { src?: unknown; snapshot?: unknown } | null> };
  if (!snapshot.children) return restored;
  const children: Record<string, unknown> = {};
  for (const [key, entry] of Object.entries(snapshot.children)) {
    children[key] = entry?.src === 'command' ? { ...entry, snapshot: restorableCommand(entry.snapshot) } : entry;
  }
  return { ...snapshot, children };
}
