import { raise as xstateRaise } from 'xstate';

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

/** A builtin action as XState resolves it (its `raise`: resolveRaise, which queues the event when the delay is no number). */
interface BuiltinAction {
  (...args: never[]): void;
  type?: unknown;
  id?: unknown;
  event?: unknown;
  delay?: unknown;
  resolve(scope: unknown, snapshot: unknown, args: unknown, params: unknown, spec: unknown, extra: { internalQueue: unknown[] }): unknown;
}

interface DelayNode {
  entry: unknown[];
  readonly states: Record<string, DelayNode>;
}

/** Where a dropped event goes (emptied at once). */
const DROPPED: unknown[] = [];

/** XState's resolution of a raise (resolveRaise). */
const resolveRaise = (xstateRaise({ type: 'shuma.unarmed' }) as unknown as BuiltinAction).resolve;

/** XState's resolution of a raise, the event dropped where the delay names no time (XState would queue it). */
function resolveUnlessUnarmed(...[scope, snapshot, args, params, spec, extra]: Parameters<BuiltinAction['resolve']>): unknown {
  const resolved = resolveRaise(scope, snapshot, args, params, spec, { ...extra, internalQueue: DROPPED });
  if (DROPPED.length > 0) DROPPED.length = 0;
  return resolved;
}

/**
 * Makes every state node of `machine` raise nothing for a delay that names no time: the
 * transition's event would only be turned down by a step of its own (three per run of a
 * command: its probe's interval and start timeout in `up`, its probe's interval in `running`),
 * which the inspector never showed either. Armed delays are raised as before.
 */
export function raisesNoUnarmedEvent<M>(machine: M): M {
  const visit = (node: DelayNode) => {
    node.entry = node.entry.map((action) => {
      const raise = action as BuiltinAction;
      if (typeof raise !== 'function' || raise.type !== 'xstate.raise' || typeof raise.id !== 'string' || !UNARMED.has(raise.id)) return action;
      // Made by XState's own factory, resolved by one function for all: an action of another
      // hidden class, or a resolver of its own for each, made XState's hottest loop slower.
      const quiet = xstateRaise(raise.event as never, { id: raise.id, delay: raise.delay as never }) as unknown as BuiltinAction;
      quiet.resolve = resolveUnlessUnarmed;
      return quiet;
    });
    for (const child of Object.values(node.states)) visit(child);
  };
  visit((machine as unknown as { root: DelayNode }).root);
  return machine;
}
