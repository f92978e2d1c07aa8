// XState notifies a subscriber on every event, also on those that changed only an actor's
// children (a finished command forgotten) or nothing at all: the worker sends a snapshot only
// when what observers see changed.

/** What observers see of a snapshot. */
export interface SnapshotParts {
  value: unknown;
  status: string;
  context: unknown;
}

/** Whether value, status or context changed (context by identity: XState replaces it on change). */
export function changedForObservers(previous: SnapshotParts | undefined, next: SnapshotParts): boolean {
  if (!previous) return true;
  if (previous.status !== next.status || previous.context !== next.context) return true;
  if (previous.value === next.value) return false;
  return JSON.stringify(previous.value) !== JSON.stringify(next.value);
}
