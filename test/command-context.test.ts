import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { SimulatedClock, type AnyActorRef } from 'xstate';
import { WorkerActors } from '../src/actors/worker-actors.js';
import type { FromWorker } from '../src/protocol/worker-messages.js';
import { mergePersisted } from '../src/protocol/persisted-delta.js';
import { resolveRestartPolicy } from '../src/protocol/validate-spec.js';

// A command actor's context is copied at every update by XState (`Object.assign({}, context,
// update)`). With 26 top-level fields V8 gave each copy a dictionary (6-15 us an update); what
// rarely changes is now nested (machines/command-context.ts). Outside the worker nothing changed:
// observers, why(), the inspector and the snapshot file see the flat record they always saw.

setFlagsFromString('--allow-natives-syntax');
const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean;

/** Every field a command's context had, flat, before the nesting: what the main thread sees. */
const FLAT_FIELDS = [
  'awaitingVerdict', 'backoffDeadline', 'dependencyDetail', 'ending', 'judged', 'key', 'label', 'lastExit', 'pendingBackoffMs',
  'pid', 'policy', 'probe', 'probeDetail', 'probeFailures', 'readyDeadline', 'restarts', 'runId', 'runStartedAt', 'runs',
  'spawnError', 'stampedAt', 'stopAlone', 'stopDetail', 'stopReason', 'waits', 'wsId',
];

function worker() {
  const clock = new SimulatedClock();
  clock.set(1_000);
  const sent: FromWorker[] = [];
  const actors = new WorkerActors((message) => sent.push(message), clock, () => clock.now(), () => undefined);
  const child = (wsId: string, key: string) => {
    const workspaces = (actors as unknown as { workspaces: Map<string, { getSnapshot(): { children: Record<string, AnyActorRef> } }> }).workspaces;
    return workspaces.get(wsId)!.getSnapshot().children[key]!;
  };
  return { actors, clock, sent, child };
}

test("a command's context stays in V8's fast mode through runs, restarts and a stop", () => {
  const { actors, clock, child } = worker();
  const policy = resolveRestartPolicy({ onFailure: true, backoffMs: 0, maxBackoffMs: 0, maxRestarts: 0 });
  actors.receive({ type: 'createWorkspace', wsId: 'W', label: 'w', ttlMs: null, at: clock.now() });
  actors.receive({ type: 'workspaceEvent', wsId: 'W', event: { type: 'RUN', at: clock.now(), key: 'A', label: 'a', policy } });
  const contexts: object[] = [];
  child('W', 'A').subscribe((snapshot: { context: object }) => contexts.push(snapshot.context));
  for (let run = 1; run <= 5; run++) {
    clock.increment(1);
    actors.receive({ type: 'childEvent', wsId: 'W', key: 'A', event: { type: 'SPAWNED', at: clock.now(), runId: `R${run}`, pid: 100 + run } });
    actors.receive({ type: 'childEvent', wsId: 'W', key: 'A', event: { type: 'EXITED', at: clock.now(), runId: `R${run}`, code: 1, signal: null, status: 1 } });
  }
  actors.receive({ type: 'childEvent', wsId: 'W', key: 'A', event: { type: 'STOP', at: clock.now(), graceMs: 10, reason: 'requested' } });
  assert.ok(contexts.length >= 10, `every update seen (${contexts.length})`);
  assert.deepEqual(contexts.filter((context) => !hasFastProperties(context)), [], 'no context copy fell into dictionary mode');
});

test("the main thread, the snapshot file and the inspector see a command's context flat; a restore from it gives the same actor back", () => {
  const { actors, clock, sent } = worker();
  const policy = resolveRestartPolicy({ onFailure: true, backoffMs: 100 });
  actors.receive({ type: 'inspect', enabled: true });
  actors.receive({ type: 'createWorkspace', wsId: 'W', label: 'w', ttlMs: null, at: clock.now() });
  actors.receive({ type: 'workspaceEvent', wsId: 'W', event: { type: 'RUN', at: clock.now(), key: 'A', label: 'a', policy } });
  actors.receive({ type: 'childEvent', wsId: 'W', key: 'A', event: { type: 'SPAWNED', at: clock.now(), runId: 'R1', pid: 101 } });
  actors.receive({ type: 'childEvent', wsId: 'W', key: 'A', event: { type: 'EXITED', at: clock.now(), runId: 'R1', code: 1, signal: null, status: 1 } });
  actors.sendPersisted();

  const mirrored = sent.flatMap((m) => (m.type === 'childSnapshot' ? [m.snapshot] : []));
  const inspected = sent.flatMap((m) => (m.type === 'inspection' && m.record.kind === 'snapshot' && m.record.machine === 'command' ? [m.record.snapshot!] : []));
  const persisted = sent.findLast((m) => m.type === 'persisted');
  assert.ok(persisted?.type === 'persisted');
  // What the main thread holds (and files): the persisted message merged with what it already has
  // (the workspace's context came in its snapshot message: persisted-delta.ts).
  const observed = sent.findLast((m) => m.type === 'snapshot' && m.wsId === 'W');
  const whole = mergePersisted(null, persisted, observed?.type === 'snapshot' ? observed.snapshot.context : undefined);
  const filed = (whole as { children: Record<string, { snapshot: { context: Record<string, unknown> } }> }).children.A!.snapshot;
  assert.ok(mirrored.length > 0 && inspected.length > 0);
  for (const context of [...mirrored.map((s) => s.context), ...inspected.map((s) => s.context), filed.context]) {
    assert.deepEqual(Object.keys(context).sort(), FLAT_FIELDS);
  }
  const last = mirrored.at(-1)!;
  assert.equal(last.value, 'backoff');
  assert.equal(last.context.key, 'A');
  assert.equal(last.context.label, 'a');
  assert.equal(last.context.restarts, 0);
  assert.deepEqual(last.context.lastExit, { code: 1, signal: null, status: 1, reason: null });

  // Restored (a new runtime, a re-hosted worker) from the flat snapshot, the actor sees it as it was.
  const again = worker();
  again.clock.set(clock.now());
  again.actors.receive({ type: 'restoreWorkspace', wsId: 'W', label: 'w', ttlMs: null, at: clock.now(), snapshot: whole, lostKeys: [] });
  const restored = again.child('W', 'A').getSnapshot() as { value: unknown; context: { given: { label: string }; restarts: number; backoffDeadline: number } };
  assert.equal(restored.value, 'backoff');
  assert.equal(restored.context.given.label, 'a');
  const told = again.sent.filter((m) => m.type === 'childSnapshot').at(-1);
  assert.ok(told?.type === 'childSnapshot');
  assert.deepEqual(Object.keys(told.snapshot.context).sort(), FLAT_FIELDS);
  again.clock.increment(100);
  assert.equal((again.child('W', 'A').getSnapshot() as { value: unknown }).value, 'restarting', 'its backoff timer was re-armed from the flat deadline');
});
