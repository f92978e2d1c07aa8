import { ShumaError } from '../protocol/errors.js';
import type { ActorSnapshot } from '../protocol/actor-records.js';

export type SnapshotObserver = (snapshot: ActorSnapshot) => void;

/** Adds a snapshot observer to an actor mirror's set; the returned function removes it. */
export function observe(observers: Set<SnapshotObserver>, observer: SnapshotObserver): () => void {
  if (typeof observer !== 'function') {
    throw new ShumaError('INVALID_ARGUMENT', 'subscribe(observer) needs a function that takes a snapshot');
  }
  observers.add(observer);
  return () => observers.delete(observer);
}
