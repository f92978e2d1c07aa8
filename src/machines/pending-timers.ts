import type { ActorSnapshot, PendingTimer } from '../protocol/actor-records.js';
import { stateName } from '../protocol/state-value.js';

// The machines keep every deadline in context as an absolute time (a restore re-arms it):
// which field is armed in which state is the machines' knowledge, read here for the inspector.

/** Which deadline field of a context is armed in which state: what the inspector counts down. */
const TIMER_FIELDS: Array<{ name: string; field: string; states: string[] }> = [
  { name: 'ttl', field: 'ttlDeadline', states: ['running'] },
  { name: 'grace', field: 'graceDeadline', states: ['reaping', 'stopping'] },
  { name: 'backoff', field: 'backoffDeadline', states: ['backoff'] },
];

export function pendingTimers(snapshot: ActorSnapshot): PendingTimer[] {
  if (snapshot.status !== 'active') return [];
  const state = stateName(snapshot.value);
  const timers: PendingTimer[] = [];
  for (const { name, field, states } of TIMER_FIELDS) {
    const deadline = snapshot.context[field];
    if (typeof deadline === 'number' && states.includes(state)) timers.push({ name, deadline });
  }
  return timers;
}
