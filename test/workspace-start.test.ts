import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assign, createActor, type Snapshot } from 'xstate';
import { WorkerActors } from '../src/actors/worker-actors.js';
import { workspaceMachine } from '../src/machines/workspace-machine.js';
import { StartedWorkspaces, stepStarted } from '../src/machines/workspace-start.js';
import type { FromWorker } from '../src/protocol/worker-messages.js';

// A plain new workspace starts from the snapshot the machine reached on START for a sample one
// (machines/workspace-start.ts): it must be the very snapshot its own START step would reach,
// and a machine whose START took more from the workspace must make it take the step itself.

const FACTS = [
  { id: '01JF0000000000000000000001', label: 'idle-1', at: 1_796_000_000_000 },
  { id: '01JF0000000000000000000002', label: 'a label with ünïcode and "quotes"', at: 5 },
  { id: 'W', label: '', at: 0 },
];

const plain = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

test('a plain new workspace starts from the very snapshot its own START step reaches', () => {
  const started = new StartedWorkspaces(workspaceMachine);
  for (const facts of FACTS) {
    const snapshot = started.snapshotFor(facts);
    assert.ok(snapshot, 'the workspace machine is one a plain workspace can start from a snapshot of');
    assert.deepEqual(plain(snapshot), plain(stepStarted(workspaceMachine, facts)));
  }
});

test('a workspace started from the snapshot goes on as one that took the step: a stop ends it the same', () => {
  const facts = FACTS[0]!;
  const fromSnapshot = createActor(workspaceMachine, { input: { id: facts.id, label: facts.label, ttlMs: null }, snapshot: new StartedWorkspaces(workspaceMachine).snapshotFor(facts)! });
  const stepped = createActor(workspaceMachine, { input: { id: facts.id, label: facts.label, ttlMs: null } });
  const requests: Record<string, unknown[]> = { fromSnapshot: [], stepped: [] };
  fromSnapshot.on('*', (request) => requests.fromSnapshot!.push(request));
  stepped.on('*', (request) => requests.stepped!.push(request));
  fromSnapshot.start();
  stepped.start();
  stepped.send({ type: 'START', at: facts.at });
  for (const actor of [fromSnapshot, stepped]) {
    actor.send({ type: 'STOP', at: facts.at + 10, graceMs: 0, reason: 'requested' });
    actor.send({ type: 'GROUPS_EMPTY', at: facts.at + 11, reaped: 0 });
  }
  assert.equal(fromSnapshot.getSnapshot().status, 'done');
  assert.deepEqual(plain(fromSnapshot.getPersistedSnapshot()), plain(stepped.getPersistedSnapshot()));
  assert.deepEqual(requests.fromSnapshot, requests.stepped);
});

test('a machine whose START takes more from the workspace than its id, label and time is stepped, never templated', () => {
  const greedy = workspaceMachine.provide({
    actions: { start: assign(({ event }) => (event.type === 'START' ? { createdAt: event.at, stampedAt: event.at, graceMs: event.at * 2 } : {})) },
  });
  assert.equal(new StartedWorkspaces(greedy).snapshotFor(FACTS[0]!), null);
});

/** The messages a worker sends for one new workspace, while inspecting (the START step taken) or not. */
function firstMessages(inspecting: boolean, facts: { id: string; label: string; at: number }): FromWorker[] {
  const sent: FromWorker[] = [];
  const worker = new WorkerActors((message) => sent.push(message), undefined, () => facts.at, () => undefined);
  if (inspecting) worker.receive({ type: 'inspect', enabled: true });
  worker.receive({ type: 'createWorkspace', wsId: facts.id, label: facts.label, ttlMs: null, at: facts.at, supervision: null, groups: null });
  worker.sendPersisted();
  return sent.filter((message) => message.type !== 'inspection');
}

test('a worker tells the main thread the same of a plain new workspace whether it took the START step or not', () => {
  for (const facts of FACTS) {
    const fast = firstMessages(false, facts);
    assert.deepEqual(fast.map((message) => message.type), ['snapshot', 'persisted']);
    assert.deepEqual(plain(fast), plain(firstMessages(true, facts)));
  }
});

test('the snapshot handed to XState is a fresh object each time: one workspace never shares its context with another', () => {
  const started = new StartedWorkspaces(workspaceMachine);
  const a = started.snapshotFor(FACTS[0]!) as Snapshot<unknown> & { context: object };
  const b = started.snapshotFor(FACTS[1]!) as Snapshot<unknown> & { context: object };
  assert.notEqual(a, b);
  assert.notEqual(a.context, b.context);
});
