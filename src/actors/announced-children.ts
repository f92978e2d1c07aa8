import type { AnyActorRef, AnyActorScope, AnyEventObject, AnyStateMachine } from 'xstate';
import type { CommandInput } from '../machines/command-context.js';
import { commandMachine } from '../machines/command-machine.js';
import { StartedCommands } from '../machines/command-start.js';
import { quietStep } from '../machines/quiet-steps.js';
import { cancelsOnlyWhenArmed } from './armed-timers.js';
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

/** What XState's actor scope holds beyond its public type: its parent, the deferred effects, the relay. */
interface ScopeInside {
  self: { _parent?: AnyActorRef };
  defer(effect: () => void): void;
  system: { _relay(source: AnyActorRef, target: AnyActorRef, event: AnyEventObject): void };
}

/**
 * `logic` (the command machine's), whose commands that wait for nothing are given their first
 * steps' snapshot while `quiet` says nobody inspects (machines/command-start.ts): what those
 * steps send the workspace is sent as XState sends it, once the command starts, in order.
 * An inspector sees the steps taken.
 */
function startingQuietly<T extends AnyStateMachine>(logic: T, quiet: () => boolean): T {
  const started = new StartedCommands(commandMachine);
  const stepped = logic.getInitialSnapshot.bind(logic) as (scope: AnyActorScope, input: CommandInput) => unknown;
  (logic as unknown as { getInitialSnapshot: typeof stepped }).getInitialSnapshot = (scope, input) => {
    const { self, defer, system } = scope as unknown as ScopeInside;
    const parent = self._parent;
    const first = parent && quiet() ? started.firstSteps(input) : null;
    if (!first) return stepped(scope, input);
    for (const event of first.toParent) defer(() => system._relay(self as AnyActorRef, parent!, event));
    return first.snapshot;
  };
  return logic;
}

/**
 * The workspace machine whose command and pipeline actors are told to `onStart` as they start,
 * spawned or restored (with the workspace that holds them); `quiet`: nobody inspects now.
 */
export function announcingWorkspaceMachine(
  onStart: (wsId: string, child: AnyActorRef, machine: ChildMachine) => void,
  quiet: () => boolean = () => false,
): typeof workspaceMachine {
  const tell = (machine: ChildMachine) => (child: AnyActorRef) => {
    const parent = (child as { _parent?: AnyActorRef })._parent;
    if (parent) onStart(parent.id, child, machine);
  };
  const command = startingQuietly(announcing(commandMachine, tell('command')), quiet);
  // A machine provided anew has state nodes of its own: they look up done events as the original's do.
  const machine = shareDoneEventLookup(workspaceMachine.provide({ actors: { command, pipeline: announcing(pipelineMachine, tell('pipeline')) } }));
  // The actors' logic only: the machine itself, which every snapshot names, keeps XState's own
  // shape (a machine with fields of its own made XState's every read of one meet two).
  const hosted = Object.create(machine) as typeof machine;
  hosted.restoreSnapshot = machine.restoreSnapshot.bind(machine);
  // Steps that change nothing (machines/quiet-steps.ts) are not taken while nobody inspects.
  const stepped = machine.transition.bind(machine);
  hosted.transition = (snapshot, event, scope) => (quiet() ? quietStep(machine, snapshot, event, scope) : undefined) ?? stepped(snapshot, event, scope);
  // A workspace's actors cancel delays only while a timer is armed (armed-timers.ts).
  // XState calls it with the actor's scope (ActorLogic.start); StateMachine's own ignores it.
  const start = machine.start.bind(machine) as (snapshot: unknown, scope: AnyActorScope) => void;
  (hosted as unknown as { start: typeof start }).start = (snapshot, scope) => {
    cancelsOnlyWhenArmed(scope.system);
    start(snapshot, scope);
  };
  return hosted;
}
