import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assign, createActor, emit } from 'xstate';
import { WorkerActors } from '../src/actors/worker-actors.js';
import { workspaceMachine } from '../src/machines/workspace-machine.js';
import { StoppedWorkspaces } from '../src/machines/workspace-shutdown.js';
import { StartedWorkspaces, stepStarted } from '../src/machines/workspace-start.js';
import type { StopEvent } from '../src/protocol/machine-events.js';
import type { FromWorker } from '../src/protocol/worker-messages.js';

// A shutdown's STOP of a plain workspace still as it started ends it where the machine's own
// step would (machines/workspace-shutdown.ts), without the step: it must be the very end that
// step reaches, told to the main thread the very same way; anything else takes the step.

const FACTS = [
  { id: '01JF0000000000000000000001', label: 'idle-1', at: 1_796_000_000_000 },
  { id: '01JF0000000000000000000002', label: 'a label with ünïcode and "quotes"', at: 5 },
  { id: 'W', label: '', at: 0 },
];
const STOPS: StopEvent[] = [
  { type: 'STOP', at: 1_796_000_000_500, graceMs: 0, reason: 'shutdown', groupsEmpty: true },
  { type: 'STOP', at: 1_796_000_000_900, graceMs: 5_000, reason: 'shutdown', groupsEmpty: true },
];

const plain = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

/** The end a started workspace reaches on `stop`, stepped. */
function stepped(machine: typeof workspaceMachine, facts: (typeof FACTS)[number], stop: StopEvent): unknown {
  const actor = createActor(machine, { input: { id: facts.id, label: facts.label, ttlMs: null } });
  actor.start();
  actor.send({ type: 'START', at: facts.at });
  actor.send(stop);
  return actor.getPersistedSnapshot();
}

/** A live snapshot of a plain workspace started from its START snapshot, as the worker holds it. */
function startedActor(started: StartedWorkspaces, machine: typeof workspaceMachine, facts: (typeof FACTS)[number]) {
  const actor = createActor(machine, { input: { id: facts.id, label: facts.label, ttlMs: null }, snapshot: started.snapshotFor(facts)! });
  return actor.start();
}

test("a plain workspace's end on a shutdown's STOP is the very end its own step reaches", () => {
  const started = new StartedWorkspaces(workspaceMachine);
  const stopped = new StoppedWorkspaces(workspaceMachine, started);
  for (const stop of STOPS) {
    for (const facts of FACTS) {
      const found = stopped.endOf(startedActor(started, workspaceMachine, facts).getSnapshot(), stop);
      assert.ok(found, 'a workspace still as it started ends without the step');
      assert.deepEqual(plain(StoppedWorkspaces.snapshotOf(found.end, found.facts)), plain(stepped(workspaceMachine, facts, stop)));
    }
  }
});

test('a workspace that changed since it started, or was not started plain, takes the step', () => {
  const started = new StartedWorkspaces(workspaceMachine);
  const stopped = new StoppedWorkspaces(workspaceMachine, started);
  const stop = STOPS[0]!;
  const facts = FACTS[0]!;
  // Its context moved (a quota breach logged changes nothing; a stamp does).
  const stamped = startedActor(started, workspaceMachine, facts);
  stamped.send({ type: 'RESUME', at: facts.at + 1 });
  assert.equal(stopped.endOf(stamped.getSnapshot(), stop), null);
  // A TTL of its own: not the plain START snapshot.
  const withTtl = createActor(workspaceMachine, { input: { id: facts.id, label: facts.label, ttlMs: 60_000 } }).start();
  withTtl.send({ type: 'START', at: facts.at });
  assert.equal(stopped.endOf(withTtl.getSnapshot(), stop), null);
  withTtl.stop(); // its TTL timer would hold the test open
  // Started by its own step (as while an inspector watches): the same state, but not the template's group.
  const ownStep = createActor(workspaceMachine, { input: { id: facts.id, label: facts.label, ttlMs: null } }).start();
  ownStep.send({ type: 'START', at: facts.at });
  assert.equal(stopped.endOf(ownStep.getSnapshot(), stop), null);
  // Restored from a snapshot of the same state (a new context object, a group of its own).
  const restored = createActor(workspaceMachine, { input: { id: facts.id, label: facts.label, ttlMs: null }, snapshot: stepStarted(workspaceMachine, facts) as never }).start();
  assert.equal(stopped.endOf(restored.getSnapshot(), stop), null);
});

test('a machine whose stop takes more from the workspace, or asks the host for something, takes the step', () => {
  const greedy = workspaceMachine.provide({
    actions: { noteStopped: assign(({ context, event }) => (event.type === 'STOP' ? { reaped: 0, stoppedAt: (context.createdAt ?? 0) + 1, graceDeadline: null, ttlDeadline: null } : {})) },
  });
  const greedyStarted = new StartedWorkspaces(greedy);
  assert.equal(new StoppedWorkspaces(greedy, greedyStarted).endOf(startedActor(greedyStarted, greedy, FACTS[0]!).getSnapshot(), STOPS[0]!), null);

  const talkative = workspaceMachine.provide({
    actions: { noteStopped: emit({ type: 'log', level: 'info', msg: 'stopped', fields: {} }) },
  });
  const talkativeStarted = new StartedWorkspaces(talkative);
  assert.equal(new StoppedWorkspaces(talkative, talkativeStarted).endOf(startedActor(talkativeStarted, talkative, FACTS[0]!).getSnapshot(), STOPS[0]!), null);
});

/** What a worker sends for plain workspaces from their creation through a shutdown's stop, while inspecting (every step taken) or not. */
function shutdownMessages(inspecting: boolean, stop: StopEvent): { sent: FromWorker[]; left: number } {
  const sent: FromWorker[] = [];
  const worker = new WorkerActors((message) => sent.push(message), undefined, () => stop.at, () => undefined);
  if (inspecting) worker.receive({ type: 'inspect', enabled: true });
  for (const facts of FACTS) {
    worker.receive({ type: 'createWorkspace', wsId: facts.id, label: facts.label, ttlMs: null, at: facts.at, supervision: null, groups: null });
  }
  worker.sendPersisted();
  // One of them changed since it started: it takes the step, inspected or not.
  worker.receive({ type: 'workspaceEvent', wsId: FACTS[2]!.id, event: { type: 'RESUME', at: stop.at - 1 } });
  worker.sendPersisted();
  worker.receive({ type: 'workspacesEvent', wsIds: FACTS.map((facts) => facts.id), event: stop });
  worker.sendPersisted();
  return { sent: sent.filter((message) => message.type !== 'inspection'), left: worker.size };
}

test('a worker tells the main thread the same of a shutdown of plain workspaces whether it took their STOP steps or not', () => {
  for (const stop of STOPS) {
    const fast = shutdownMessages(false, stop);
    const stepping = shutdownMessages(true, stop);
    assert.deepEqual(plain(fast.sent), plain(stepping.sent));
    assert.deepEqual(
      fast.sent.filter((message) => message.type === 'snapshot').slice(-FACTS.length).map((message) => (message as { snapshot: { value: unknown; status: string } }).snapshot.status),
      FACTS.map(() => 'done'),
    );
    assert.equal(fast.left, 0, 'every workspace is let go');
    assert.equal(stepping.left, 0);
  }
});
