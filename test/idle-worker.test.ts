import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createActor, SimulatedClock } from 'xstate';
import { WorkerActors } from '../src/actors/worker-actors.js';
import { workspaceMachine } from '../src/machines/workspace-machine.js';
import type { InspectionRecord } from '../src/protocol/actor-records.js';
import type { FromWorker } from '../src/protocol/worker-messages.js';
import { DEFAULT_GRACE_MS } from '../src/protocol/specs.js';

// What an idle workspace costs its worker thread (bench/workspaces.ts measures how much): no
// timer it will never need, no message nobody can read. What the host, the inspector and the
// snapshot file see stays as it was.

/** A simulated clock that also counts the timers armed on it. */
function countingClock() {
  const simulated = new SimulatedClock();
  simulated.set(1_000);
  const armed: number[] = [];
  const clock = {
    setTimeout: (fn: (...args: unknown[]) => void, ms: number) => {
      armed.push(ms);
      return simulated.setTimeout(fn, ms);
    },
    clearTimeout: (id: Parameters<SimulatedClock['clearTimeout']>[0]) => simulated.clearTimeout(id),
  };
  return { simulated, clock, armed };
}

function workspaceOn(ttlMs: number | null) {
  const { simulated, clock, armed } = countingClock();
  const actor = createActor(workspaceMachine, { input: { id: 'W', label: 'w', ttlMs }, clock });
  actor.start();
  actor.send({ type: 'START', at: simulated.now() });
  return { actor, simulated, armed };
}

function workerUnderTest() {
  const clock = new SimulatedClock();
  clock.set(1_000);
  const sent: FromWorker[] = [];
  const actors = new WorkerActors((message) => sent.push(message), clock, () => clock.now(), () => undefined);
  const records = () => sent.flatMap((m) => (m.type === 'inspection' ? [m.record] : [])) as InspectionRecord[];
  return { actors, clock, sent, records };
}

describe('an idle workspace in its worker', () => {
  test('arms no timer without a TTL, nor for a stop without grace; a TTL and a grace still arm theirs and act', () => {
    const idle = workspaceOn(null);
    assert.equal(idle.actor.getSnapshot().value, 'running');
    assert.deepEqual(idle.armed, [], 'no timer for a TTL it does not have');
    idle.actor.send({ type: 'STOP', at: idle.simulated.now(), graceMs: 0, reason: 'requested' });
    assert.deepEqual(idle.actor.getSnapshot().value, { reaping: 'killing' }, 'no grace: killing in the same step');
    assert.deepEqual(idle.armed, [], 'no timer for a grace already over');
    idle.actor.send({ type: 'GROUPS_EMPTY', at: idle.simulated.now(), reaped: 0 });
    assert.equal(idle.actor.getSnapshot().status, 'done');

    const timed = workspaceOn(5_000);
    assert.deepEqual(timed.armed, [5_000]);
    timed.simulated.increment(4_999);
    assert.equal(timed.actor.getSnapshot().value, 'running');
    timed.simulated.increment(1);
    assert.deepEqual(timed.actor.getSnapshot().value, { reaping: 'terminating' }, 'the TTL ran out');
    assert.equal(timed.actor.getSnapshot().context.stopReason, 'ttl');
    assert.deepEqual(timed.armed, [5_000, DEFAULT_GRACE_MS], 'the stop has its grace');
    timed.simulated.increment(DEFAULT_GRACE_MS);
    assert.deepEqual(timed.actor.getSnapshot().value, { reaping: 'killing' });

    const graced = workspaceOn(null);
    graced.actor.send({ type: 'STOP', at: graced.simulated.now(), graceMs: 100, reason: 'requested' });
    assert.deepEqual(graced.armed, [100]);
    graced.simulated.increment(100);
    assert.deepEqual(graced.actor.getSnapshot().value, { reaping: 'killing' });
  });

  test('the inspector sees no step for a timer never armed, and sees the step of each timer that ran out', () => {
    const { actors, clock, records } = workerUnderTest();
    actors.receive({ type: 'inspect', enabled: true });
    actors.receive({ type: 'createWorkspace', wsId: 'I', label: 'idle', ttlMs: null, at: clock.now() });
    actors.receive({ type: 'workspaceEvent', wsId: 'I', event: { type: 'STOP', at: clock.now(), graceMs: 0, reason: 'requested' } });
    actors.receive({ type: 'workspaceEvent', wsId: 'I', event: { type: 'GROUPS_EMPTY', at: clock.now(), reaped: 0 } });
    const idleSteps = records().filter((r) => r.kind === 'microstep' && r.rootId === 'I');
    assert.ok(idleSteps.length >= 4, 'START, STOP, the eventless step to killing and GROUPS_EMPTY are seen');
    assert.deepEqual(idleSteps.filter((r) => (r.event as { type: string }).type.startsWith('xstate.after.')), []);

    // The same delays, armed, name the events the worker leaves out when they are not (no-timer.ts).
    actors.receive({ type: 'createWorkspace', wsId: 'T', label: 'timed', ttlMs: 50, at: clock.now() });
    clock.increment(50);
    actors.receive({ type: 'createWorkspace', wsId: 'G', label: 'graced', ttlMs: null, at: clock.now() });
    actors.receive({ type: 'workspaceEvent', wsId: 'G', event: { type: 'STOP', at: clock.now(), graceMs: 20, reason: 'requested' } });
    clock.increment(20);
    const fired = records()
      .filter((r) => r.kind === 'microstep' && (r.event as { type: string }).type.startsWith('xstate.after.'))
      .map((r) => [r.rootId, (r.event as { type: string }).type, r.transitions?.length]);
    assert.deepEqual(fired, [
      ['T', 'xstate.after.ttl.workspace.running', 1],
      ['G', 'xstate.after.grace.workspace.reaping.terminating', 1],
    ]);
  });

  test("sends no snapshot of `created`, which nobody can see; `running` and the persisted snapshot come in the first batch", () => {
    const { actors, clock, sent } = workerUnderTest();
    actors.receive({ type: 'createWorkspace', wsId: 'W', label: 'w', ttlMs: null, at: clock.now() });
    actors.sendPersisted();
    assert.deepEqual(
      sent.map((m) => (m.type === 'snapshot' ? `snapshot ${String(m.snapshot.value)}` : m.type)),
      ['snapshot running', 'persisted'],
    );
  });

  test('persists nothing more once a shutdown stops it (the state was frozen first); a stop asked alone is persisted', () => {
    const { actors, clock, sent } = workerUnderTest();
    for (const wsId of ['S', 'R']) actors.receive({ type: 'createWorkspace', wsId, label: wsId, ttlMs: null, at: clock.now() });
    actors.sendPersisted();
    sent.length = 0;
    actors.receive({ type: 'workspaceEvent', wsId: 'S', event: { type: 'STOP', at: clock.now(), graceMs: 1_000, reason: 'shutdown' } });
    actors.receive({ type: 'workspaceEvent', wsId: 'R', event: { type: 'STOP', at: clock.now(), graceMs: 1_000, reason: 'requested' } });
    actors.sendPersisted();
    const persisted = sent.filter((m) => m.type === 'persisted').map((m) => (m as { wsId: string }).wsId);
    assert.deepEqual(persisted, ['R']);
    // What observers see still comes: the shutdown's stop is seen as any other.
    const snapshots = sent.filter((m) => m.type === 'snapshot').map((m) => (m as { wsId: string }).wsId);
    assert.deepEqual(snapshots, ['S', 'R']);
  });
});
