import type { AnyActorScope, AnyEventObject, AnyMachineSnapshot, AnyStateMachine } from 'xstate';
import type { HostRequest } from '../protocol/host-requests.js';

// Most events a workspace hears in a run change nothing of it: four of its member's reports
// (up, ready, an exit: no failure to judge, nobody waiting: `memberChangesNothing`) and the
// member's spawn request, which it only relays to the host. XState takes a whole macrostep for
// each (a microstep whose transition does nothing, an eventless pass, the action's resolution):
// ~15% of the actor thread's XState work per run. Where the transition XState selects has no
// target and no action, the snapshot stays the very same object, so no step needs to be taken;
// a relay is what its action emits, deferred as XState defers it. Only an inspector could tell
// (it is shown the microstep): while someone inspects, the steps are taken.

/** A transition as XState selects it. */
interface Selected {
  target?: readonly unknown[] | undefined;
  actions: readonly unknown[];
  reenter: boolean;
}

/** What the workspace's `relay` action emits for a member's request (workspace-setup.ts): the request itself. */
export function relayed(event: { type: string }): HostRequest {
  return (event as unknown as { request: HostRequest }).request;
}

/** The workspace's action that emits `relayed(event)` (workspace-setup.ts), by its name. */
const RELAY = 'relay';

/** XState's own events (init, stop, errors, done children): an error nobody handles is a step of its own. */
const XSTATE_PREFIX = 'xstate.';

/**
 * The snapshot after `event` when its step would change nothing (the same object), a relay's
 * request emitted as XState would; undefined when the step must be taken. `snapshot` is at rest,
 * as every snapshot XState hands an event is: its eventless transitions are all turned down,
 * and they read only the context.
 */
export function quietStep(machine: AnyStateMachine, snapshot: AnyMachineSnapshot, event: AnyEventObject, scope: AnyActorScope): AnyMachineSnapshot | undefined {
  if (snapshot.status !== 'active' || event.type.startsWith(XSTATE_PREFIX)) return undefined;
  const transitions = machine.getTransitionData(snapshot, event) as readonly Selected[];
  let relay = false;
  for (const transition of transitions) {
    if (transition.target !== undefined || transition.reenter) return undefined;
    if (transition.actions.length === 0) continue;
    const only = transition.actions.length === 1 && transitions.length === 1 ? transition.actions[0] : undefined;
    if (only !== RELAY || (machine.implementations.actions[RELAY] as { type?: unknown } | undefined)?.type !== 'xstate.emit') return undefined;
    relay = true;
  }
  if (relay) {
    const request = relayed(event);
    scope.defer(() => scope.emit(request));
  }
  return snapshot;
}
