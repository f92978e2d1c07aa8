// Leaving a state with a delayed transition cancels its timer through the system's scheduler
// (XState's `cancel`, at every exit: three per run of a command), which builds the timer's key
// and deletes it from two records, timer or not. Most runs arm none (no probe to poll, no TTL,
// no backoff: machines/no-timer.ts), so the cancel is made only when some timer is armed in
// the system: what it would do otherwise is delete keys that are not there.

/** XState's actor system, as far as its scheduler goes (not in its public type). */
interface SchedulingSystem {
  scheduler: { cancel(source: unknown, id: string): void };
  _snapshot: { _scheduledEvents: Record<string, unknown> };
}

/** Makes `system`'s scheduler cancel only while some timer is armed in it. */
export function cancelsOnlyWhenArmed(system: unknown): void {
  const inside = system as SchedulingSystem;
  const cancel = inside.scheduler.cancel;
  inside.scheduler.cancel = (source, id) => {
    // The record of armed timers is replaced when the system starts: read it at each cancel.
    for (const _armed in inside._snapshot._scheduledEvents) return cancel(source, id);
  };
}
