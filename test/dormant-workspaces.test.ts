import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SimulatedClock } from 'xstate';
import { WorkerActors } from '../src/actors/worker-actors.js';
import type { FromWorker, ToWorker } from '../src/protocol/worker-messages.js';
import { resolveRestartPolicy } from '../src/protocol/validate-spec.js';

// A plain new workspace has no XState actor until something is told to it
// (actors/dormant-workspaces.ts). Nothing outside the actor thread may tell the difference: the
// main thread (its mirror, the snapshot file, why()) and the inspector must hear, message for
// message, what they hear from a thread that makes every workspace's actor as it is created.

const plain = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

const ID = (n: number) => `01JF00000000000000000000${String(n).padStart(2, '0')}`;
const [A, B, C, D, E, F, G, H, I] = [1, 2, 3, 4, 5, 6, 7, 8, 9].map(ID) as [string, string, string, string, string, string, string, string, string];

const create = (wsId: string, label: string, at: number, ttlMs: number | null = null): ToWorker => ({ type: 'createWorkspace', wsId, label, ttlMs, at, supervision: null, groups: null });
const stop = (wsId: string, at: number): ToWorker => ({ type: 'workspaceEvent', wsId, event: { type: 'STOP', at, graceMs: 0, reason: 'requested' } });

/** Turns of the event loop: each a batch of messages, then the flush (persisted messages) at its end. */
function turns(at: number): ToWorker[][] {
  const policy = resolveRestartPolicy({ onFailure: true, backoffMs: 0, maxBackoffMs: 0, maxRestarts: 0 });
  return [
    [create(A, 'idle-a', at), create(B, 'a label with ünïcode and "quotes"', at + 1), create(C, '', at + 2), create(D, 'd', at + 3), create(E, 'with a TTL', at + 4, 60_000)],
    // The first event of a workspace: a command run in it.
    [{ type: 'workspaceEvent', wsId: A, event: { type: 'RUN', at: at + 10, key: 'K', label: 'k', policy } }],
    [{ type: 'childEvent', wsId: A, key: 'K', event: { type: 'SPAWNED', at: at + 11, runId: 'R1', pid: 4242 } }],
    [{ type: 'childEvent', wsId: A, key: 'K', event: { type: 'EXITED', at: at + 12, runId: 'R1', code: 0, signal: null, status: 0 } }],
    // Created and told something in the same turn: its persisted message must still leave once.
    [create(F, 'f', at + 20), stop(F, at + 21)],
    [{ type: 'workspaceEvent', wsId: F, event: { type: 'GROUPS_EMPTY', at: at + 22, reaped: 0 } }],
    // Created and told, in the same turn, something that changes nothing of it: persisted all the same.
    [create(I, 'i', at + 23), { type: 'workspaceEvent', wsId: I, event: { type: 'GROUPS_EMPTY', at: at + 24, reaped: 0 } }],
    // A child event for a workspace that has no children: nothing.
    [{ type: 'childEvent', wsId: D, key: 'nobody', event: { type: 'STOP', at: at + 25, graceMs: 0, reason: 'requested' } }],
    [stop(B, at + 30)],
    [{ type: 'workspaceEvent', wsId: B, event: { type: 'GROUPS_EMPTY', at: at + 31, reaped: 0 } }],
    // An inspector opens on workspaces that were never told anything, then watches one stop.
    [{ type: 'inspect', enabled: true }],
    [stop(C, at + 40)],
    [{ type: 'workspaceEvent', wsId: C, event: { type: 'GROUPS_EMPTY', at: at + 41, reaped: 0 } }],
    [{ type: 'inspect', enabled: false }],
    [create(G, 'g', at + 50), create(H, 'h', at + 51)],
    [{ type: 'release', wsId: H }],
    // The shutdown: one STOP for all that are left, the runtime's state frozen.
    [{ type: 'workspacesEvent', wsIds: [A, C, D, E, G, I], event: { type: 'STOP', at: at + 60, graceMs: 0, reason: 'shutdown', groupsEmpty: true } }],
  ];
}

/** What a worker says over all the turns, and how many workspaces it says it hosts after each. */
function run(holdsDormant: boolean): { sent: FromWorker[][]; sizes: number[] } {
  const clock = new SimulatedClock();
  clock.set(1_796_000_000_000);
  const said: FromWorker[] = [];
  const worker = new WorkerActors((message) => said.push(message), clock, () => clock.now(), () => undefined, () => true, holdsDormant);
  const sent: FromWorker[][] = [];
  const sizes: number[] = [];
  for (const turn of turns(clock.now())) {
    for (const message of turn) worker.receive(message);
    worker.sendPersisted();
    sent.push(said.splice(0));
    sizes.push(worker.size);
  }
  return { sent, sizes };
}

test('a worker holding idle workspaces without actors says, turn by turn, what one with an actor for each says', () => {
  const dormant = run(true);
  const eager = run(false);
  assert.deepEqual(dormant.sizes, eager.sizes);
  // A (its command) is still stopping at the end.
  assert.deepEqual(dormant.sizes, [5, 5, 5, 5, 6, 5, 6, 6, 6, 5, 5, 5, 4, 4, 6, 5, 1]);
  for (let turn = 0; turn < eager.sent.length; turn++) {
    assert.deepEqual(plain(dormant.sent[turn]), plain(eager.sent[turn]), `turn ${turn}`);
  }
  // The scenario covers what it means to: every workspace was told, persisted, inspected and ended.
  const all = eager.sent.flat();
  assert.ok(all.some((message) => message.type === 'inspection'), 'the inspector saw a step');
  assert.ok(all.some((message) => message.type === 'hostRequest'), 'a workspace asked the host for something');
  assert.equal(all.filter((message) => message.type === 'persisted' && message.wsId === F).length, 1, 'F, created and stopped in one turn, was persisted once (as it stopped)');
  assert.equal(all.filter((message) => message.type === 'persisted' && message.wsId === I).length, 1, 'I, created and told what changes nothing in one turn, was persisted once');
  for (const wsId of [B, C, D, E, F, G, I]) assert.ok(all.some((message) => message.type === 'snapshot' && message.wsId === wsId && message.snapshot.status === 'done'), `${wsId} ended`);
});
