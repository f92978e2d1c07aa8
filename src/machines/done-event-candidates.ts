import type { AnyStateMachine } from 'xstate';

// XState keeps, on each state node, the transitions that may answer an event type, memoised by
// that type for the machine's life. A child's done event has a type of its own
// (`xstate.done.actor.<child id>`), so every command or pipeline that ended left an entry on the
// workspace machine's nodes: ~490 bytes a run, never dropped (a million jobs: half a gigabyte
// on the actor thread). The machines answer those events only through the wildcard
// `xstate.done.actor.*`, so the lookup is made under that one type: the same transitions, in the
// same order (the wildcard's own are the exact match then, and shorter wildcards follow as
// before). Guards of those transitions would see that type; they have none (a test holds it).

const DONE_PREFIX = 'xstate.done.actor.';
export const SHARED_DONE_TYPE = 'xstate.done.actor.*';

interface LookupNode {
  next(snapshot: unknown, event: { type: string }): unknown;
  readonly states: Record<string, LookupNode>;
}

/** Makes every state node of `machine` look up a child's done event under one type. */
export function shareDoneEventLookup<M extends AnyStateMachine>(machine: M): M {
  const visit = (node: LookupNode) => {
    const own = node.next;
    node.next = function (this: LookupNode, snapshot, event) {
      if (!event.type.startsWith(DONE_PREFIX)) return own.call(this, snapshot, event);
      return own.call(this, snapshot, { ...event, type: SHARED_DONE_TYPE });
    };
    for (const child of Object.values(node.states)) visit(child);
  };
  visit(machine.root as unknown as LookupNode);
  return machine;
}
