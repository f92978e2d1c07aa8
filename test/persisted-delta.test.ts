import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SimulatedClock, type AnyActorRef } from 'xstate';
import { WorkerActors } from '../src/actors/worker-actors.js';
import { persistedSnapshotOf } from '../src/actors/command-contexts.js';
import { toPersistable } from '../src/actors/plain.js';
import { flatCommandContext, type CommandContext } from '../src/machines/command-context.js';
import { withCommandsNested } from '../src/actors/restored-snapshot.js';
import type { ActorSnapshot, PlainValue } from '../src/protocol/actor-records.js';
import type { FromWorker } from '../src/protocol/worker-messages.js';
import { mergePersisted } from '../src/protocol/persisted-delta.js';
import { resolveRestartPolicy } from '../src/protocol/validate-spec.js';

// The worker sends a workspace's persisted snapshot as a delta (its own part, the children the
// main thread lacks or holds an older one of, and the list of children). What the main thread
// rebuilds must be, at every step, exactly XState's whole persisted snapshot: restore and
// re-hosting read it.

interface Mirror {
  persisted: Map<string, PlainValue>;
  /** Each workspace's last snapshot: a persisted message may take its context from it. */
  snapshots: Map<string, ActorSnapshot>;
}

function apply(mirror: Mirror, message: FromWorker): void {
  if (message.type === 'snapshot') mirror.snapshots.set(message.wsId, message.snapshot);
  if (message.type === 'persisted') {
    const merged = mergePersisted(mirror.persisted.get(message.wsId) ?? null, message, mirror.snapshots.get(message.wsId)?.context);
    mirror.persisted.set(message.wsId, merged);
  }
  if (message.type === 'persistedChild') {
    const whole = mirror.persisted.get(message.wsId) as { children?: Record<string, { snapshot: PlainValue }> } | undefined;
    const entry = whole?.children?.[message.key];
    if (entry) entry.snapshot = message.snapshot;
  }
}

/**
 * What a restore hands XState from the main thread's copy: the snapshot file holds a command's
 * context flat (src/actors/command-contexts.ts), its actor nested.
 */
function restorable(persisted: PlainValue | undefined): unknown {
  return persisted === undefined ? undefined : toPersistable(withCommandsNested(persisted));
}

/** `holdsDormant`: whether a plain new workspace has no actor until told something (actors/dormant-workspaces.ts). */
function workerUnderTest(holdsDormant = true) {
  const clock = new SimulatedClock();
  clock.set(1_000);
  const sent: FromWorker[] = [];
  const mirror: Mirror = { persisted: new Map(), snapshots: new Map() };
  const actors = new WorkerActors((message) => sent.push(message), clock, () => clock.now(), () => undefined, () => true, holdsDormant);
  /** One turn of the channel: the persisted messages join the batch, the main thread applies it. */
  const flush = () => {
    actors.sendPersisted();
    for (const message of sent.splice(0)) apply(mirror, message);
  };
  const whole = (wsId: string) => {
    const actor = (actors as unknown as { workspaces: Map<string, { getPersistedSnapshot(): unknown }> }).workspaces.get(wsId)!;
    return toPersistable(actor.getPersistedSnapshot());
  };
  const children = (wsId: string) => {
    const actor = (actors as unknown as { workspaces: Map<string, { getSnapshot(): { children: Record<string, AnyActorRef> } }> }).workspaces.get(wsId)!;
    return actor.getSnapshot().children;
  };
  return { actors, clock, mirror, flush, whole, children, sent };
}

describe('persisted snapshots sent as deltas', () => {
  test('the main thread rebuilds the whole persisted snapshot at every step: commands come, restart, end and go', () => {
    const { actors, clock, mirror, flush, whole, children } = workerUnderTest();
    actors.receive({ type: 'createWorkspace', wsId: 'W', label: 'w', ttlMs: null, at: clock.now() });
    flush();
    // W has no actor until it is told something: the mirror holds what one made at creation persists.
    const eager = workerUnderTest(false);
    eager.actors.receive({ type: 'createWorkspace', wsId: 'W', label: 'w', ttlMs: null, at: clock.now() });
    eager.flush();
    assert.deepEqual(restorable(mirror.persisted.get('W')), eager.whole('W'));
    const supervised = resolveRestartPolicy({ onFailure: true, backoffMs: 0, maxBackoffMs: 0, maxRestarts: 3 });
    const once = resolveRestartPolicy({ onFailure: false });
    let run = 0;
    const steps: Array<() => void> = [];
    for (const key of ['A', 'B', 'C']) {
      steps.push(() => actors.receive({ type: 'workspaceEvent', wsId: 'W', event: { type: 'RUN', at: clock.now(), key, label: key.toLowerCase(), policy: key === 'B' ? once : supervised } }));
    }
    const spawned = (key: string) => () => actors.receive({ type: 'childEvent', wsId: 'W', key, event: { type: 'SPAWNED', at: clock.now(), runId: `R${++run}`, pid: 100 + run } });
    const exited = (key: string, status: number) => () => {
      const runId = (children('W')[key]!.getSnapshot() as { context: { runId: string } }).context.runId;
      actors.receive({ type: 'childEvent', wsId: 'W', key, event: { type: 'EXITED', at: clock.now(), runId, code: status, signal: null, status } });
    };
    steps.push(spawned('A'), spawned('B'), spawned('C'));
    // A fails and relaunches (a child changed alone), B ends (a child gone), C fails twice.
    steps.push(exited('A', 1), spawned('A'), exited('C', 1));
    // In one turn: a child changes while the workspace changes too (B ends and goes).
    steps.push(() => (spawned('C')(), exited('B', 0)()), exited('C', 1), spawned('C'));
    steps.push(() => actors.receive({ type: 'workspaceEvent', wsId: 'W', event: { type: 'RUN', at: clock.now(), key: 'D', label: 'd', policy: once } }), spawned('D'));
    for (const [i, step] of steps.entries()) {
      clock.increment(5);
      step();
      flush();
      assert.deepEqual(restorable(mirror.persisted.get('W')), whole('W'), `after step ${i}`);
    }
    assert.deepEqual(Object.keys((whole('W') as { children: object }).children), ['A', 'C', 'D']);
  });

  test("a command's persisted part, made from its snapshot, is XState's own with its context flat: same fields, same order", () => {
    const { actors, clock, children } = workerUnderTest();
    actors.receive({ type: 'createWorkspace', wsId: 'W', label: 'w', ttlMs: null, at: clock.now() });
    const xstates = (key: string) => {
      const child = children('W')[key]!;
      const own = child.getPersistedSnapshot() as unknown as { context: CommandContext };
      return JSON.stringify(toPersistable({ ...own, context: flatCommandContext(own.context) }));
    };
    const ours = (key: string) => JSON.stringify(toPersistable(persistedSnapshotOf(children('W')[key]!, 'command')));
    const policy = resolveRestartPolicy({ onFailure: true, backoffMs: 50, maxBackoffMs: 50, maxRestarts: 3 });
    const probe = { text: 'tcp 1', polled: true, intervalMs: 1000, failureThreshold: 2, startTimeoutMs: 500 } as never;
    actors.receive({ type: 'workspaceEvent', wsId: 'W', event: { type: 'RUN', at: clock.now(), key: 'A', label: 'a', policy, probe } });
    const seen = new Set<string>();
    const check = () => {
      const value = String(children('W')['A']!.getSnapshot().value);
      seen.add(value);
      assert.equal(ours('A'), xstates('A'), `in ${value}`);
    };
    check();
    actors.receive({ type: 'childEvent', wsId: 'W', key: 'A', event: { type: 'SPAWNED', at: clock.now(), runId: 'R1', pid: 101 } });
    check();
    actors.receive({ type: 'childEvent', wsId: 'W', key: 'A', event: { type: 'PROBE_RESULT', at: clock.now(), runId: 'R1', ok: true, detail: null } as never });
    check();
    clock.increment(5);
    actors.receive({ type: 'childEvent', wsId: 'W', key: 'A', event: { type: 'EXITED', at: clock.now(), runId: 'R1', code: 1, signal: null, status: 1 } });
    check();
    actors.receive({ type: 'childEvent', wsId: 'W', key: 'A', event: { type: 'STOP', at: clock.now(), reason: 'requested', graceMs: 100 } as never });
    // Stopped, it is done and gone from the tree: nothing of it is persisted any more.
    assert.equal(children('W')['A'], undefined);
    assert.deepEqual([...seen], ['starting', 'up', 'running', 'backoff']);
  });

  test('a workspace hosted afresh (restored, re-hosted) is sent whole again', () => {
    const { actors, clock, mirror, flush, whole, sent } = workerUnderTest();
    actors.receive({ type: 'createWorkspace', wsId: 'W', label: 'w', ttlMs: null, at: clock.now() });
    actors.receive({ type: 'workspaceEvent', wsId: 'W', event: { type: 'RUN', at: clock.now(), key: 'A', label: 'a', policy: resolveRestartPolicy({ onFailure: false }) } });
    flush();
    const saved = mirror.persisted.get('W')!;
    actors.receive({ type: 'release', wsId: 'W' });
    actors.receive({ type: 'restoreWorkspace', wsId: 'W', label: 'w', ttlMs: null, at: clock.now(), snapshot: saved, lostKeys: [] });
    actors.sendPersisted();
    const message = sent.find((m) => m.type === 'persisted');
    assert.ok(message && message.type === 'persisted');
    assert.deepEqual(Object.keys((message.snapshot as { children: object }).children), ['A'], 'the restored child travels in full');
    mirror.persisted.delete('W');
    for (const m of sent.splice(0)) apply(mirror, m);
    assert.deepEqual(restorable(mirror.persisted.get('W')), whole('W'));
  });

  test('a context the main thread holds already (its snapshot message went first) is not sent again with the persisted snapshot', () => {
    const { actors, clock, mirror, flush, whole, sent } = workerUnderTest();
    actors.receive({ type: 'createWorkspace', wsId: 'W', label: 'w', ttlMs: null, at: clock.now() });
    flush();
    const policy = resolveRestartPolicy({ onFailure: false });
    for (const key of ['A', 'B']) {
      clock.increment(5);
      actors.receive({ type: 'workspaceEvent', wsId: 'W', event: { type: 'RUN', at: clock.now(), key, label: key.toLowerCase(), policy } });
      actors.sendPersisted();
      const snapshot = sent.find((m) => m.type === 'snapshot');
      const persisted = sent.find((m) => m.type === 'persisted');
      assert.ok(snapshot?.type === 'snapshot' && persisted?.type === 'persisted', `a snapshot and a persisted message for RUN ${key}`);
      assert.ok(sent.indexOf(snapshot) < sent.indexOf(persisted), 'the snapshot travels first');
      assert.equal(persisted.mirroredContext, true);
      assert.equal((persisted.snapshot as { context?: unknown }).context, undefined, 'the context is left out');
      for (const m of sent.splice(0)) apply(mirror, m);
      assert.deepEqual(restorable(mirror.persisted.get('W')), whole('W'));
      assert.deepEqual((mirror.persisted.get('W') as { context: { group: { order: string[] } } }).context.group.order.at(-1), key);
    }
    // Without the snapshot's context at hand the main thread could not rebuild it: it says so.
    const message = { type: 'persisted' as const, wsId: 'W', snapshot: { status: 'active' }, children: [], mirroredContext: true as const };
    assert.throws(() => mergePersisted(null, message), /never had/);
  });
});
