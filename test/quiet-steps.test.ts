import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SimulatedClock } from 'xstate';
import { WorkerActors } from '../src/actors/worker-actors.js';
import type { FromWorker, ToWorker } from '../src/protocol/worker-messages.js';
import type { CommandEvent, RunEvent } from '../src/protocol/machine-events.js';
import { resolveRestartPolicy } from '../src/protocol/validate-spec.js';
import { resolveProbe } from '../src/protocol/supervision-spec.js';

// While nobody inspects, the actor thread does not take the steps that change nothing (a
// workspace hearing a member's report, relaying a request: machines/quiet-steps.ts) and gives a
// new command the snapshot of its first steps (machines/command-start.ts). Nothing outside the
// thread may tell: the main thread (its mirror, the snapshot file, why()) hears, message for
// message, what it hears from a thread that takes every step, and an inspector opening midway
// sees the steps from then on.

const plain = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

const WS = '01JF0000000000000000000W01';
const OTHER = '01JF0000000000000000000W02';

const create = (wsId: string, at: number, supervision: unknown = null): ToWorker =>
  ({ type: 'createWorkspace', wsId, label: `ws ${wsId}`, ttlMs: null, at, supervision, groups: null }) as ToWorker;
const run = (wsId: string, at: number, key: string, more: Partial<RunEvent> = {}): ToWorker => ({
  type: 'workspaceEvent',
  wsId,
  event: { type: 'RUN', at, key, label: key.toLowerCase(), policy: resolveRestartPolicy({ onFailure: false }), ...more },
});
const tell = (wsId: string, key: string, event: CommandEvent): ToWorker => ({ type: 'childEvent', wsId, key, event });
const spawned = (wsId: string, key: string, at: number, runId: string): ToWorker => tell(wsId, key, { type: 'SPAWNED', at, runId, pid: 4000 + at % 1000 });
const exited = (wsId: string, key: string, at: number, runId: string, status = 0): ToWorker =>
  tell(wsId, key, { type: 'EXITED', at, runId, code: status, signal: null, status });

/** Turns of the event loop: each a batch of messages, then the flush (persisted messages) at its end. */
function turns(at: number): ToWorker[][] {
  const relaunched = resolveRestartPolicy({ onFailure: true, backoffMs: 0, maxBackoffMs: 0, maxRestarts: 1 });
  const backedOff = resolveRestartPolicy({ onFailure: true, backoffMs: 50, maxRestarts: 2 });
  const probe = resolveProbe({ line: 'ready' });
  return [
    [create(WS, at), create(OTHER, at + 1, { strategy: 'one_for_one', intensity: { maxRestarts: 1, withinMs: 60_000 } })],
    // One at a time, as bench (a) runs them.
    [run(WS, at + 10, 'A')],
    [spawned(WS, 'A', at + 11, 'RA1')],
    [exited(WS, 'A', at + 12, 'RA1')],
    // Several in flight in one turn, their events interleaved.
    [run(WS, at + 20, 'B'), run(WS, at + 20, 'C'), run(WS, at + 21, 'D', { restarts: 2 })],
    [spawned(WS, 'C', at + 22, 'RC1'), spawned(WS, 'B', at + 22, 'RB1'), exited(WS, 'C', at + 23, 'RC1', 3)],
    [spawned(WS, 'D', at + 24, 'RD1'), exited(WS, 'B', at + 25, 'RB1')],
    // A failure relaunched at once (a standing order), then given up; one backed off (a log relayed).
    [run(WS, at + 30, 'E', { policy: relaunched }), run(WS, at + 30, 'F', { policy: backedOff })],
    [spawned(WS, 'E', at + 31, 'RE1'), spawned(WS, 'F', at + 31, 'RF1')],
    [exited(WS, 'E', at + 32, 'RE1', 1), exited(WS, 'F', at + 32, 'RF1', 2)],
    [spawned(WS, 'E', at + 33, 'RE2'), exited(WS, 'E', at + 34, 'RE2', 1)],
    // A probe: up, then ready when told so.
    [run(WS, at + 40, 'G', { probe })],
    [spawned(WS, 'G', at + 41, 'RG1')],
    [tell(WS, 'G', { type: 'PROBE_RESULT', at: at + 42, runId: 'RG1', ok: true, detail: 'line seen' })],
    // One waits for another (the workspace judges its members' reports then).
    [run(WS, at + 50, 'H', { deps: [{ key: 'G', label: 'g', condition: 'ready' }] })],
    [spawned(WS, 'H', at + 51, 'RH1'), exited(WS, 'G', at + 52, 'RG1', 0)],
    // A group with an intensity judges each failure.
    [run(OTHER, at + 60, 'I', { policy: relaunched })],
    [spawned(OTHER, 'I', at + 61, 'RI1')],
    [exited(OTHER, 'I', at + 62, 'RI1', 1)],
    // An inspector opens midway through a run, and closes midway through the next.
    [run(WS, at + 70, 'J')],
    [{ type: 'inspect', enabled: true }],
    [spawned(WS, 'J', at + 71, 'RJ1')],
    [exited(WS, 'J', at + 72, 'RJ1'), run(WS, at + 73, 'K')],
    [{ type: 'inspect', enabled: false }],
    [spawned(WS, 'K', at + 74, 'RK1')],
    [exited(WS, 'K', at + 75, 'RK1')],
    // A stop while runs are alive.
    [run(WS, at + 80, 'L'), { type: 'workspaceEvent', wsId: WS, event: { type: 'STOP', at: at + 81, graceMs: 5_000, reason: 'requested' } }],
    [spawned(WS, 'L', at + 82, 'RL1'), exited(WS, 'H', at + 83, 'RH1', 143), exited(WS, 'D', at + 83, 'RD1', 143)],
    [exited(WS, 'L', at + 84, 'RL1', 143), exited(WS, 'F', at + 84, 'RF1', 2)],
    [{ type: 'workspaceEvent', wsId: WS, event: { type: 'GROUPS_EMPTY', at: at + 85, reaped: 3 } }],
  ];
}

/** What a worker says over all the turns. */
function said(skipsQuietSteps: boolean): FromWorker[][] {
  const clock = new SimulatedClock();
  clock.set(1_796_000_000_000);
  const out: FromWorker[] = [];
  const worker = new WorkerActors((message) => out.push(message), clock, () => clock.now(), () => undefined, () => true, true, skipsQuietSteps);
  const sent: FromWorker[][] = [];
  for (const turn of turns(clock.now())) {
    for (const message of turn) worker.receive(message);
    worker.sendPersisted();
    sent.push(out.splice(0));
  }
  return sent;
}

test('a worker that skips the steps that change nothing says, turn by turn, what one taking every step says; an inspector sees them all', () => {
  const quiet = said(true);
  const stepped = said(false);
  assert.equal(quiet.length, stepped.length);
  for (let turn = 0; turn < stepped.length; turn++) {
    assert.deepEqual(plain(quiet[turn]), plain(stepped[turn]), `turn ${turn}`);
  }
  // The scenario covers what it means to.
  const all = stepped.flat();
  const requests = all.flatMap((message) => (message.type === 'hostRequest' ? [message.request.type] : []));
  assert.ok(requests.filter((type) => type === 'spawn').length >= 12, 'runs asked for their spawns');
  assert.ok(requests.includes('log'), 'a log request was relayed');
  const inspected = all.filter((message) => message.type === 'inspection');
  assert.ok(inspected.some((message) => message.type === 'inspection' && message.record.kind === 'microstep' && (message.record.event as { type?: unknown }).type === 'MEMBER'), 'the inspector saw a member report step');
  assert.ok(inspected.some((message) => message.type === 'inspection' && message.record.kind === 'actor' && message.record.actorId === 'K'), 'the inspector saw a command made');
  assert.ok(all.some((message) => message.type === 'snapshot' && message.wsId === WS && message.snapshot.status === 'done'), 'the workspace ended');
});
