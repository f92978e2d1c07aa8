import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createActor, SimulatedClock, type AnyActorRef } from 'xstate';
import { WorkerActors } from '../src/actors/worker-actors.js';
import { workspaceMachine } from '../src/machines/workspace-machine.js';
import type { InspectionRecord } from '../src/protocol/actor-records.js';
import type { FromWorker } from '../src/protocol/worker-messages.js';
import { DEFAULT_GRACE_MS } from '../src/protocol/specs.js';
import { resolveRestartPolicy } from '../src/protocol/validate-spec.js';

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

  test('a run without a polled probe arms no timer; a command stopped with its workspace no grace of its own (it armed 24.8 days); one stopped alone arms its grace and kills at its end', () => {
    const { actor, simulated, armed } = workspaceOn(null);
    const requests: string[] = [];
    actor.on('*', (request) => {
      if (request.type === 'signalRun') requests.push(`${request.runId} ${request.signal}`);
    });
    const policy = resolveRestartPolicy({ onFailure: false });
    const child = (key: string) => (actor.getSnapshot().children as Record<string, AnyActorRef>)[key]!;
    for (const key of ['A', 'B']) {
      actor.send({ type: 'RUN', at: simulated.now(), key, label: key.toLowerCase(), policy });
      child(key).send({ type: 'SPAWNED', at: simulated.now(), runId: `R${key}`, pid: 100 });
    }
    assert.equal(child('A').getSnapshot().value, 'running');
    assert.deepEqual(armed, [], 'no probe to poll, no start deadline: no timer');
    child('B').send({ type: 'STOP', at: simulated.now(), graceMs: 50, reason: 'requested' });
    assert.equal(child('B').getSnapshot().value, 'stopping');
    assert.deepEqual(armed, [50], 'the stop alone has its grace');
    assert.deepEqual(requests, ['RB SIGTERM']);
    simulated.increment(50);
    assert.deepEqual(requests, ['RB SIGTERM', 'RB SIGKILL'], 'its grace ran out: killed');

    actor.send({ type: 'STOP', at: simulated.now(), graceMs: 100, reason: 'requested' });
    assert.equal(child('A').getSnapshot().value, 'stopping');
    assert.deepEqual(armed, [50, 100], "only the workspace's grace: none for the command stopped with it");
  });

  test('the inspector sees no step for a timer never armed, and sees the step of each timer that ran out', () => {
    const { actors, clock, records } = workerUnderTest();
    actors.receive({ type: 'inspect', enabled: true });
    actors.receive({ type: 'createWorkspace', wsId: 'I', label: 'idle', ttlMs: null, at: clock.now() });
    actors.receive({ type: 'workspaceEvent', wsId: 'I', event: { type: 'STOP', at: clock.now(), graceMs: 0, reason: 'requested' } });
    actors.receive({ type: 'workspaceEvent', wsId: 'I', event: { type: 'GROUPS_EMPTY', at: clock.now(), reaped: 0 } });
    const idleSteps = records().filter((r) => r.kind === 'microstep' && r.rootId === 'I');
    // A stop with no grace goes straight to killing (no `terminating`, no eventless step out of it).
    assert.deepEqual(
      idleSteps.map((r) => [(r.event as { type: string }).type, r.transitions?.flatMap((t) => t.targets)]),
      [['START', ['workspace.running']], ['STOP', ['workspace.reaping.killing']], ['GROUPS_EMPTY', ['workspace.stopped']]],
      'START, STOP and GROUPS_EMPTY are seen, each with the state it entered',
    );
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

describe('a workspace that ended', () => {
  test('is let go by its worker as it tells its end (no release needed); one that failed waits for the release', () => {
    const { actors, clock, sent } = workerUnderTest();
    actors.receive({ type: 'createWorkspace', wsId: 'E', label: 'ends', ttlMs: null, at: clock.now() });
    actors.receive({ type: 'createWorkspace', wsId: 'F', label: 'fails', ttlMs: null, at: clock.now() });
    assert.equal(actors.size, 2);
    actors.receive({ type: 'workspaceEvent', wsId: 'E', event: { type: 'STOP', at: clock.now(), graceMs: 0, reason: 'requested' } });
    actors.receive({ type: 'workspaceEvent', wsId: 'E', event: { type: 'GROUPS_EMPTY', at: clock.now(), reaped: 0 } });
    const last = sent.filter((m) => m.type === 'snapshot' && m.wsId === 'E').at(-1);
    assert.equal(last?.type === 'snapshot' && last.snapshot.status, 'done', 'its end is told');
    assert.equal(actors.size, 1, 'and it is gone from the thread');
    actors.receive({ type: 'workspaceEvent', wsId: 'F', event: { type: 'FAULT', message: 'drill' } });
    assert.ok(sent.some((m) => m.type === 'actorError' && m.wsId === 'F'));
    assert.equal(actors.size, 1, 'a failed actor is held until the host lets it go');
    actors.receive({ type: 'release', wsId: 'F' });
    assert.equal(actors.size, 0);
  });
});

describe('children watched with no inspector attached', () => {
  test('a command is watched from its first snapshot; inspection turned on records every step once, turned off none', () => {
    const { actors, clock, sent, records } = workerUnderTest();
    const policy = resolveRestartPolicy({ onFailure: false });
    const childStates = () => sent.flatMap((m) => (m.type === 'childSnapshot' ? [`${m.key} ${JSON.stringify(m.snapshot.value)}`] : []));
    actors.receive({ type: 'createWorkspace', wsId: 'W', label: 'w', ttlMs: null, at: clock.now() });
    actors.receive({ type: 'workspaceEvent', wsId: 'W', event: { type: 'RUN', at: clock.now(), key: 'A', label: 'a', policy } });
    assert.deepEqual(childStates(), ['A "starting"'], 'its first state, as it started');
    assert.ok(sent.some((m) => m.type === 'hostRequest' && m.request.type === 'spawn'), 'it asked for its run');
    assert.deepEqual(records(), [], 'nobody inspects: no record');

    actors.receive({ type: 'inspect', enabled: true });
    actors.receive({ type: 'childEvent', wsId: 'W', key: 'A', event: { type: 'SPAWNED', at: clock.now(), runId: 'R1', pid: 101 } });
    // A workspace made while inspecting is seen from its creation on (its actor record first).
    actors.receive({ type: 'createWorkspace', wsId: 'V', label: 'v', ttlMs: null, at: clock.now() });
    actors.receive({ type: 'workspaceEvent', wsId: 'V', event: { type: 'RUN', at: clock.now(), key: 'B', label: 'b', policy } });
    assert.deepEqual(childStates(), ['A "starting"', 'A "running"', 'B "starting"']);
    const seen = records();
    const spawnedEvents = seen.filter((r) => r.kind === 'event' && (r.event as { type: string }).type === 'SPAWNED');
    assert.equal(spawnedEvents.length, 1, 'one observer per workspace: each step recorded once');
    assert.deepEqual(
      seen.filter((r) => r.kind === 'actor').map((r) => `${r.rootId}/${r.actorId} ${r.machine}`),
      ['V/V workspace', 'V/B command'],
    );

    // Off, and on again: still one record per step, for both workspaces.
    actors.receive({ type: 'inspect', enabled: false });
    const before = records().length;
    actors.receive({ type: 'childEvent', wsId: 'W', key: 'A', event: { type: 'EXITED', at: clock.now(), runId: 'R1', code: 0, signal: null, status: 0 } });
    assert.equal(records().length, before, 'inspection off: no record');
    actors.receive({ type: 'inspect', enabled: true });
    actors.receive({ type: 'workspaceEvent', wsId: 'W', event: { type: 'QUOTA_BREACH', at: clock.now(), resource: 'memory', used: 2, limit: 1, action: 'log', message: 'memory: 2 > 1' } });
    actors.receive({ type: 'workspaceEvent', wsId: 'V', event: { type: 'QUOTA_BREACH', at: clock.now(), resource: 'memory', used: 2, limit: 1, action: 'log', message: 'memory: 2 > 1' } });
    const breaches = records().slice(before).filter((r) => r.kind === 'event' && (r.event as { type: string }).type === 'QUOTA_BREACH');
    assert.deepEqual(breaches.map((r) => r.rootId), ['W', 'V']);
  });
});
