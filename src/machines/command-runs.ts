import type { ActorSnapshot } from '../protocol/actor-records.js';
import { stateName } from '../protocol/state-value.js';

// What a command actor's snapshot says about one of its runs, for the main thread's promises:
// they settle when the actor knows what they say, never before.

/** States in which the command's current run is still going (or its exit not yet heard). */
const RUN_GOING = new Set(['up', 'running', 'ending', 'stopping']);

/** The run the command actor has been told of (SPAWNED), if any. */
export function runIdOf(snapshot: ActorSnapshot): string | null {
  const runId = snapshot.context.runId;
  return typeof runId === 'string' ? runId : null;
}

/**
 * Whether the actor has heard how run `runId` ended: it moved on to a later run (ids are
 * ULIDs, ordered by creation), or left the states in which that run is still going, or ended.
 */
export function hasHeardExitOf(snapshot: ActorSnapshot, runId: string): boolean {
  if (snapshot.status !== 'active') return true;
  const current = runIdOf(snapshot);
  if (current === null) return false;
  return current > runId || (current === runId && !RUN_GOING.has(stateName(snapshot.value)));
}
