import type { AnyActorRef, AnyActorScope, AnyStateMachine } from 'xstate';
import { commandMachine } from '../machines/command-machine.js';
import { pipelineMachine } from '../machines/pipeline-machine.js';
import { shareDoneEventLookup } from '../machines/done-event-candidates.js';
import { workspaceMachine } from '../machines/workspace-machine.js';

// The worker watches every command and pipeline actor from its first snapshot on. XState tells
// of a new actor only to an inspection observer, and an observer is handed every step of every
// actor (an event object built and spread for each action, microstep and snapshot): ~6% of a
// worker's time to create a workspace, thrown away unless an inspector is open. Instead the
// children's logic says when each starts, before its first snapshot (XState calls `logic.start`
// just before it), and inspection is attached only while someone inspects.

export type ChildMachine = 'command' | 'pipeline';

/** `logic`, the same in all but this: each actor of it is handed to `onStart` as it starts. */
function announcing<T extends AnyStateMachine>(logic: T, onStart: (child: AnyActorRef) => void): T {
  const announced = Object.create(logic) as T;
  // XState calls it with the actor's scope (ActorLogic.start); StateMachine's own ignores it.
  const start = logic.start.bind(logic) as (snapshot: unknown, scope: AnyActorScope) => void;
  (announced as unknown as { start: typeof start }).start = (snapshot, scope) => {
    onStart(scope.self);
    start(snapshot, scope);
  };
  return announced;
}

/**
 * The workspace machine whose command and pipeline actors are told to `onStart` as they start,
 * spawned or restored (with the workspace that holds them).
 */
export function announcingWorkspaceMachine(onStart: (wsId: string, child: AnyActorRef, machine: ChildMachine) => void): typeof workspaceMachine {
  const tell = (machine: ChildMachine) => (child: AnyActorRef) => {
    const parent = (child as { _parent?: AnyActorRef })._parent;
    if (parent) onStart(parent.id, child, machine);
  };
  // A machine provided anew has state nodes of its own: they look up done events as the original's do.
  return shareDoneEventLookup(
    workspaceMachine.provide({
      actors: { command: announcing(commandMachine, tell('command')), pipeline: announcing(pipelineMachine, tell('pipeline')) },
    }),
  );
}
