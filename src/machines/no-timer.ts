// A delayed transition (`after`) is armed on entry whatever its guard says. A delay that names
// no time is XState's way to arm nothing: the transition's event is raised in the same step
// instead (xstate's resolveRaise), where its guard turns it down, or where the state was already
// left. 10,000 idle workspaces armed 10,000 timers of 24.8 days: ~0.8 KiB and a setTimeout and
// a clearTimeout each; every run of a command without a polled probe armed two more (probe
// interval, start timeout), and every command stopped with its workspace one of 24.8 days.

/** What a delay returns when there is nothing to wait for: no timer (typed as a delay). */
export const NO_TIMER = undefined as unknown as number;

/** The events of the delays that may be NO_TIMER (`xstate.after.<delay>.<state id>`). */
const UNARMED = new Set([
  'xstate.after.ttl.workspace.running',
  'xstate.after.grace.workspace.reaping.terminating',
  'xstate.after.stopGrace.command.stopping',
  'xstate.after.probeInterval.command.up',
  'xstate.after.probeInterval.command.running',
  'xstate.after.startTimeout.command.up',
]);

/**
 * A step that only turned down the event of a delay never armed: no timer ran out, nothing
 * happened, and an armed timer would not have shown it either (the inspector leaves it out).
 */
export function isUnarmedDelay(eventType: string, transitions: number): boolean {
  return transitions === 0 && UNARMED.has(eventType);
}
