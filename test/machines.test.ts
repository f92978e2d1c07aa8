import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createActor, SimulatedClock, type AnyActorRef } from 'xstate';
import { commandMachine } from '../src/machines/command-machine.js';
import { pipelineFailed } from '../src/machines/pipeline-machine.js';
import { nextBackoff } from '../src/machines/backoff.js';
import { workspaceMachine } from '../src/machines/workspace-machine.js';
import type { HostRequest } from '../src/protocol/host-requests.js';
import { resolveProbe } from '../src/protocol/supervision-spec.js';
import { resolveRestartPolicy } from '../src/protocol/validate-spec.js';

// The machines alone, with no worker and no process: the host is played by the test.

function workspaceUnderTest(ttlMs: number | null = null) {
  const clock = new SimulatedClock();
  clock.set(1_000);
  const requests: HostRequest[] = [];
  const actor = createActor(workspaceMachine, { input: { id: 'W', label: 'w', ttlMs }, clock });
  actor.on('*', (request) => requests.push(request));
  actor.start();
  actor.send({ type: 'START', at: clock.now() });
  const child = (key: string) => (actor.getSnapshot().children as Record<string, AnyActorRef | undefined>)[key];
  return { actor, clock, requests, child };
}

/** A new actor from `actor`'s persisted snapshot (`actor` is stopped), `ms` later, RESUMEd as restore does. */
function restoredLater(actor: ReturnType<typeof workspaceUnderTest>['actor'], clock: SimulatedClock, ms: number) {
  const persisted = JSON.parse(JSON.stringify(actor.getPersistedSnapshot())) as object;
  actor.stop();
  const later = new SimulatedClock();
  later.set(clock.now() + ms);
  const requests: HostRequest[] = [];
  const restored = createActor(workspaceMachine, { input: { id: 'W', label: 'w', ttlMs: null }, clock: later, snapshot: persisted as never });
  restored.on('*', (request) => requests.push(request));
  restored.start();
  restored.send({ type: 'RESUME', at: later.now() });
  return { restored, later, requests };
}

describe('nextBackoff', () => {
  const policy = resolveRestartPolicy({ onFailure: true, backoffMs: 200, maxBackoffMs: 30_000 });

  test('doubles up to the ceiling', () => {
    const delays: number[] = [];
    let pending = policy.backoffMs;
    for (let i = 0; i < 10; i++) {
      const { delayMs, followingMs } = nextBackoff(policy, pending, 0);
      delays.push(delayMs);
      pending = followingMs;
    }
    assert.deepEqual(delays, [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
  });

  test('a stable run resets it; backoffMs 0 stays 0', () => {
    assert.equal(nextBackoff(policy, 12_800, 30_000).delayMs, 200);
    assert.equal(nextBackoff(policy, 12_800, 29_999).delayMs, 12_800);
    const zero = resolveRestartPolicy({ onFailure: true, backoffMs: 0 });
    assert.deepEqual(nextBackoff(zero, 0, 0), { delayMs: 0, followingMs: 0 });
  });
});

describe('workspace machine', () => {
  test('created → running on START; the TTL deadline is absolute', () => {
    const { actor } = workspaceUnderTest(5_000);
    assert.equal(actor.getSnapshot().value, 'running');
    assert.equal(actor.getSnapshot().context.ttlDeadline, 6_000);
  });

  test('TTL expiry → reaping with SIGTERM, SIGKILL after the grace, stopped when the host says empty', () => {
    const { actor, clock, requests } = workspaceUnderTest(5_000);
    clock.increment(4_999);
    assert.equal(actor.getSnapshot().value, 'running');
    clock.increment(1);
    assert.deepEqual(actor.getSnapshot().value, { reaping: 'terminating' });
    assert.equal(actor.getSnapshot().context.stopReason, 'ttl');
    assert.deepEqual(requests, [{ type: 'signal', wsId: 'W', signal: 'SIGTERM' }]);
    clock.increment(1_000);
    assert.deepEqual(actor.getSnapshot().value, { reaping: 'killing' });
    assert.deepEqual(requests.at(-1), { type: 'signal', wsId: 'W', signal: 'SIGKILL' });
    actor.send({ type: 'GROUPS_EMPTY', at: clock.now(), reaped: 2 });
    assert.equal(actor.getSnapshot().value, 'stopped');
    assert.equal(actor.getSnapshot().status, 'done');
    assert.equal(actor.getSnapshot().context.reaped, 2);
  });

  test('STOP with grace 0 sends only SIGKILL', () => {
    const { actor, clock, requests } = workspaceUnderTest();
    actor.send({ type: 'STOP', at: clock.now(), graceMs: 0, reason: 'requested' });
    assert.deepEqual(actor.getSnapshot().value, { reaping: 'killing' });
    assert.deepEqual(requests, [{ type: 'signal', wsId: 'W', signal: 'SIGKILL' }]);
  });

  test('STOP with grace 0 goes straight to killing: no terminating step in between (one step less for every stop of a shutdown)', () => {
    const clock = new SimulatedClock();
    clock.set(1_000);
    const entered: string[] = [];
    const actor = createActor(workspaceMachine, {
      input: { id: 'W', label: 'w', ttlMs: null },
      clock,
      inspect: (event) => {
        if (event.type !== '@xstate.microstep') return;
        for (const transition of event._transitions) for (const target of transition.target ?? []) entered.push(target.id);
      },
    });
    actor.start();
    actor.send({ type: 'START', at: clock.now() });
    entered.length = 0;
    actor.send({ type: 'STOP', at: clock.now(), graceMs: 0, reason: 'shutdown' });
    assert.deepEqual(entered, ['workspace.reaping.killing']);
    assert.deepEqual(actor.getSnapshot().value, { reaping: 'killing' });
    assert.equal(actor.getSnapshot().context.graceDeadline, clock.now());
  });

  test('a second STOP may shorten the grace, not lengthen it', () => {
    const { actor, clock } = workspaceUnderTest();
    actor.send({ type: 'STOP', at: clock.now(), graceMs: 10_000, reason: 'requested' });
    actor.send({ type: 'STOP', at: clock.now(), graceMs: 60_000, reason: 'requested' });
    assert.equal(actor.getSnapshot().context.graceDeadline, clock.now() + 10_000);
    actor.send({ type: 'STOP', at: clock.now(), graceMs: 100, reason: 'requested' });
    assert.equal(actor.getSnapshot().context.graceDeadline, clock.now() + 100);
    clock.increment(100);
    assert.deepEqual(actor.getSnapshot().value, { reaping: 'killing' });
  });

  test('RUN spawns a command actor whose spawn request the workspace relays', () => {
    const { actor, clock, requests, child } = workspaceUnderTest();
    const policy = resolveRestartPolicy(undefined);
    actor.send({ type: 'RUN', at: clock.now(), key: 'C1', label: 'c', policy });
    assert.deepEqual(requests, [{ type: 'spawn', wsId: 'W', key: 'C1', restarts: 0 }]);
    assert.equal(child('C1')?.getSnapshot().value, 'starting');
    assert.equal(actor.getSnapshot().context.commandsStarted, 1);
  });

  test('FAULT makes the actor fail (the chaos hook)', () => {
    const { actor } = workspaceUnderTest();
    const errors: unknown[] = [];
    actor.subscribe({ error: (e) => errors.push(e) });
    actor.send({ type: 'FAULT', message: 'boom' });
    assert.equal(actor.getSnapshot().status, 'error');
    assert.equal((errors[0] as Error).message, 'boom');
  });
});

describe('command machine', () => {
  function commandUnderTest(restart: Parameters<typeof resolveRestartPolicy>[0]) {
    const { actor, clock, requests, child } = workspaceUnderTest();
    actor.send({ type: 'RUN', at: clock.now(), key: 'C', label: 'c', policy: resolveRestartPolicy(restart) });
    const cmd = child('C')!;
    let run = 0;
    const spawned = () => cmd.send({ type: 'SPAWNED', at: clock.now(), runId: `R${++run}`, pid: 100 + run });
    const exit = (status: number) =>
      cmd.send({ type: 'EXITED', at: clock.now(), runId: `R${run}`, code: status, signal: null, status });
    return { actor, clock, requests, cmd, spawned, exit };
  }

  test('running → exited on success; a failure without policy is final too', () => {
    const { cmd, spawned, exit } = commandUnderTest(undefined);
    spawned();
    assert.equal(cmd.getSnapshot().value, 'running');
    exit(1);
    assert.equal(cmd.getSnapshot().value, 'exited');
    assert.equal(cmd.getSnapshot().status, 'done');
  });

  test('failure → backoff → restarting → running; gives up past maxRestarts', () => {
    const { cmd, clock, requests, spawned, exit } = commandUnderTest({ onFailure: true, backoffMs: 100, maxRestarts: 2 });
    spawned();
    exit(1);
    assert.equal(cmd.getSnapshot().value, 'backoff');
    assert.equal(cmd.getSnapshot().context.backoffDeadline, clock.now() + 100);
    clock.increment(100);
    assert.equal(cmd.getSnapshot().value, 'restarting');
    assert.deepEqual(requests.filter((r) => r.type === 'spawn').at(-1), { type: 'spawn', wsId: 'W', key: 'C', restarts: 1 });
    spawned();
    exit(1);
    assert.equal(cmd.getSnapshot().context.backoffDeadline, clock.now() + 200);
    clock.increment(200);
    spawned();
    exit(2);
    assert.equal(cmd.getSnapshot().value, 'gaveUp');
    assert.equal(cmd.getSnapshot().context.restarts, 2);
    assert.ok(requests.some((r) => r.type === 'log' && r.msg.includes('giving up')));
  });

  test('STOP during backoff cancels the relaunch', () => {
    const { actor, cmd, clock, requests, spawned, exit } = commandUnderTest({ onFailure: true, backoffMs: 100 });
    spawned();
    exit(1);
    actor.send({ type: 'STOP', at: clock.now(), graceMs: 1000, reason: 'requested' });
    assert.equal(cmd.getSnapshot().value, 'stopped');
    const spawnsBefore = requests.filter((r) => r.type === 'spawn').length;
    clock.increment(10_000);
    assert.equal(requests.filter((r) => r.type === 'spawn').length, spawnsBefore);
  });

  test('a failed relaunch spawn counts as a failure; the first spawn failing is final', () => {
    const { cmd, clock, spawned, exit } = commandUnderTest({ onFailure: true, backoffMs: 10, maxRestarts: 1 });
    spawned();
    exit(1);
    clock.increment(10);
    cmd.send({ type: 'SPAWN_FAILED', at: clock.now(), error: { name: 'ShumaError', message: 'gone' } });
    assert.equal(cmd.getSnapshot().value, 'gaveUp');

    const first = commandUnderTest({ onFailure: true });
    first.cmd.send({ type: 'SPAWN_FAILED', at: first.clock.now(), error: { name: 'ShumaError', message: 'nope' } });
    assert.equal(first.cmd.getSnapshot().value, 'failed');
  });

  test('STOP while running waits for the exit', () => {
    const { actor, cmd, clock, spawned, exit } = commandUnderTest({ onFailure: true });
    spawned();
    actor.send({ type: 'STOP', at: clock.now(), graceMs: 1000, reason: 'requested' });
    assert.equal(cmd.getSnapshot().value, 'stopping');
    exit(143);
    assert.equal(cmd.getSnapshot().value, 'stopped');
  });
});

describe('pipeline machine', () => {
  test("pipelineFailed: 'any' excuses an upstream SIGPIPE, 'last' counts only the last node", () => {
    const sigpipe = { code: null, signal: 'SIGPIPE', status: 141 };
    const ok = { code: 0, signal: null, status: 0 };
    const base = { nodeLabels: ['yes', 'head'], upstreamLabels: ['yes'], discern: 'any' as const };
    assert.equal(pipelineFailed({ ...base, exits: { yes: sigpipe, head: ok } }), false);
    assert.equal(pipelineFailed({ ...base, exits: { yes: ok, head: sigpipe } }), true, 'the last node has no reader to lose');
    assert.equal(pipelineFailed({ ...base, exits: { yes: { code: 1, signal: null, status: 1 }, head: ok } }), true);
    assert.equal(pipelineFailed({ ...base, discern: 'last', exits: { yes: { code: 1, signal: null, status: 1 }, head: ok } }), false);
  });

  test('a stable attempt resets the backoff; a quick failure doubles it', () => {
    const { actor, clock } = workspaceUnderTest();
    actor.send({
      type: 'RUN_PIPELINE',
      at: clock.now(),
      key: 'P',
      label: 'p',
      nodeLabels: ['a'],
      upstreamLabels: [],
      discern: 'any',
      policy: resolveRestartPolicy({ onFailure: true, backoffMs: 100, resetAfterMs: 1_000 }),
    });
    const child = (actor.getSnapshot().children as Record<string, AnyActorRef>).P!;
    let attempt = 0;
    const runAndFail = (after: number) => {
      child.send({ type: 'PIPELINE_SPAWNED', at: clock.now(), attempt, runs: [{ label: 'a', runId: `R${attempt}`, pid: 1 }] });
      clock.increment(after);
      child.send({ type: 'NODE_EXITED', at: clock.now(), label: 'a', runId: `R${attempt}`, code: 1, signal: null, status: 1 });
      const { backoffDeadline, stampedAt } = child.getSnapshot().context as { backoffDeadline: number; stampedAt: number };
      const delay = backoffDeadline - stampedAt;
      clock.increment(delay);
      attempt++;
      return delay;
    };
    assert.deepEqual([runAndFail(0), runAndFail(0), runAndFail(0), runAndFail(1_000), runAndFail(0)], [100, 200, 400, 100, 200]);
  });
});

describe('restored actors', () => {
  test('RESUME re-arms a backoff for what is left of it; RUN_LOST restarts a supervised command without counting', () => {
    const { actor, clock } = workspaceUnderTest();
    actor.send({ type: 'RUN', at: clock.now(), key: 'C', label: 'c', policy: resolveRestartPolicy({ onFailure: true, backoffMs: 1_000 }) });
    const cmd = (actor.getSnapshot().children as Record<string, AnyActorRef>).C!;
    cmd.send({ type: 'SPAWNED', at: clock.now(), runId: 'R1', pid: 1 });
    cmd.send({ type: 'EXITED', at: clock.now(), runId: 'R1', code: 1, signal: null, status: 1 });

    // 600 ms later, a new actor from the snapshot: 400 ms of the backoff are left.
    const { restored, later, requests } = restoredLater(actor, clock, 600);
    const child = (restored.getSnapshot().children as Record<string, AnyActorRef>).C!;
    later.increment(399);
    assert.equal(child.getSnapshot().value, 'backoff');
    later.increment(1);
    assert.equal(child.getSnapshot().value, 'restarting');
    assert.deepEqual(requests.filter((r) => r.type === 'spawn'), [{ type: 'spawn', wsId: 'W', key: 'C', restarts: 1 }]);

    child.send({ type: 'SPAWNED', at: later.now(), runId: 'R2', pid: 2 });
    child.send({ type: 'RUN_LOST', at: later.now() });
    assert.equal(child.getSnapshot().value, 'restarting');
    assert.equal(child.getSnapshot().context.restarts, 1, 'a lost run is no failure: not counted');
  });

  test('RESUME while ending (a run not ready in time): its kill grace is armed again, in full, and no second SIGTERM is sent', () => {
    const { actor, clock } = workspaceUnderTest();
    const probe = resolveProbe({ exec: ['false'], intervalMs: 50, startTimeoutMs: 100 });
    actor.send({ type: 'RUN', at: clock.now(), key: 'C', label: 'c', policy: resolveRestartPolicy(undefined), probe });
    const cmd = (actor.getSnapshot().children as Record<string, AnyActorRef>).C!;
    cmd.send({ type: 'SPAWNED', at: clock.now(), runId: 'R1', pid: 1 });
    // Not ready in time: a failed probe past the deadline ends the run.
    clock.increment(100);
    cmd.send({ type: 'PROBE_RESULT', at: clock.now(), runId: 'R1', ok: false, detail: 'exit 1' });
    assert.equal(cmd.getSnapshot().value, 'ending');

    const { restored, later, requests } = restoredLater(actor, clock, 600);
    const child = (restored.getSnapshot().children as Record<string, AnyActorRef>).C!;
    assert.equal(child.getSnapshot().value, 'ending');
    const signals = () => requests.filter((r) => r.type === 'signalRun').map((r) => (r as { signal: string }).signal);
    assert.deepEqual(signals(), [], 'its SIGTERM was sent before the snapshot');
    later.increment(999);
    assert.deepEqual(signals(), []);
    later.increment(1);
    assert.deepEqual(signals(), ['SIGKILL']);
  });

  test('RUN_LOST while starting (restored before its first spawn was heard): it asks for its spawn again, one-shot or supervised', () => {
    for (const policy of [resolveRestartPolicy(undefined), resolveRestartPolicy({ onFailure: true })]) {
      const { actor, clock, requests, child } = workspaceUnderTest();
      actor.send({ type: 'RUN', at: clock.now(), key: 'C', label: 'c', policy });
      assert.equal(child('C')!.getSnapshot().value, 'starting');
      child('C')!.send({ type: 'RUN_LOST', at: clock.now() });
      assert.equal(child('C')!.getSnapshot().value, 'starting');
      assert.deepEqual(requests.filter((r) => r.type === 'spawn').map((r) => (r as { restarts: number }).restarts), [0, 0], 'asked twice, as a first run');
      child('C')!.send({ type: 'SPAWNED', at: clock.now(), runId: 'R1', pid: 1 });
      assert.equal(child('C')!.getSnapshot().value, 'running');
    }
  });

  test('RUN_LOST ends a one-shot command as stopped; a TTL past its deadline stops at RESUME', () => {
    const { actor, clock } = workspaceUnderTest(1_000);
    actor.send({ type: 'RUN', at: clock.now(), key: 'C', label: 'c', policy: resolveRestartPolicy(undefined) });
    const cmd = (actor.getSnapshot().children as Record<string, AnyActorRef>).C!;
    cmd.send({ type: 'SPAWNED', at: clock.now(), runId: 'R1', pid: 1 });
    cmd.send({ type: 'RUN_LOST', at: clock.now() });
    assert.equal(cmd.getSnapshot().value, 'stopped');
    actor.send({ type: 'RESUME', at: clock.now() + 5_000 });
    assert.deepEqual(actor.getSnapshot().value, { reaping: 'terminating' });
    assert.equal(actor.getSnapshot().context.stopReason, 'ttl');
  });
});
