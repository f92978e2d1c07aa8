import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { InspectionRecord } from '../src/index.js';
import { startRuntime, stateOf, waitFor } from './helpers.js';

/** True when the value holds only what msgpack and JSON carry: no functions, no class instances. */
function isPlainData(value: unknown): boolean {
  if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) return true;
  if (Array.isArray(value)) return value.every(isPlainData);
  if (typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return (proto === Object.prototype || proto === null) && Object.values(value as object).every(isPlainData);
}

describe('inspection records', () => {
  test('every actor, from the workers, as plain data; a restart cycle in order', async () => {
    const records: InspectionRecord[] = [];
    const rt = await startRuntime({ inspect: (r) => records.push(r) });
    const ws = await rt.createWorkspace({ label: 'inspected' });
    const cmd = await ws.run({ exec: '/bin/false', restart: { onFailure: true, backoffMs: 1, maxRestarts: 1 } });
    await waitFor(cmd.subscribe.bind(cmd), (s) => stateOf(s) === 'gaveUp', 'the give-up');
    await ws.stop();

    assert.ok(records.length > 0);
    for (const record of records) assert.ok(isPlainData(record), `not plain: ${JSON.stringify(record)}`);
    const actors = records.filter((r) => r.kind === 'actor').map((r) => r.machine);
    assert.deepEqual(actors, ['workspace', 'command']);

    const commandStates = records
      .filter((r) => r.kind === 'snapshot' && r.actorId === cmd.commandKey)
      .map((r) => stateOf(r.snapshot!));
    const distinct = commandStates.filter((s, i) => s !== commandStates[i - 1]);
    assert.deepEqual(distinct, ['starting', 'running', 'backoff', 'restarting', 'running', 'gaveUp']);

    const workspaceStates = records
      .filter((r) => r.kind === 'snapshot' && r.actorId === ws.id)
      .map((r) => stateOf(r.snapshot!));
    assert.deepEqual(
      workspaceStates.filter((s, i) => s !== workspaceStates[i - 1]),
      ['created', 'running', 'reaping', 'stopped'],
    );
    assert.ok(records.every((r) => r.rootId === ws.id));
    // A snapshot in backoff carries its timer as an absolute deadline.
    const inBackoff = records.find((r) => r.kind === 'snapshot' && r.actorId === cmd.commandKey && stateOf(r.snapshot!) === 'backoff')!;
    assert.deepEqual(inBackoff.timers, [{ name: 'backoff', deadline: inBackoff.snapshot!.context.backoffDeadline }]);
    const events = records.filter((r) => r.kind === 'event').map((r) => r.event?.type);
    for (const type of ['START', 'RUN', 'SPAWNED', 'EXITED', 'STOP', 'GROUPS_EMPTY']) assert.ok(events.includes(type), type);
  });

  test('rt.inspect() subscribes and unsubscribes', async () => {
    const rt = await startRuntime();
    const seen: InspectionRecord[] = [];
    const unsubscribe = rt.inspect((r) => seen.push(r));
    const ws = await rt.createWorkspace({ label: 'watched' });
    assert.ok(seen.some((r) => r.kind === 'snapshot' && r.actorId === ws.id));
    unsubscribe();
    const count = seen.length;
    await (await ws.run({ exec: '/bin/true' })).exited;
    await ws.stop();
    assert.equal(seen.length, count);
  });
});
