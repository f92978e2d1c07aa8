import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { capturingLogger, startRuntime, stateOf, waitFor } from './helpers.js';

describe('structured lifecycle logs (seed 24)', () => {
  test('created, spawned, exited, restart with backoff, give-up, stopped with counts', async () => {
    const { logger, records } = capturingLogger();
    const rt = await startRuntime({ logger });
    const ws = await rt.createWorkspace({ label: 'logged' });
    const cmd = await ws.run({
      exec: '/bin/false',
      label: 'loser',
      restart: { onFailure: true, backoffMs: 1, maxRestarts: 2 },
    });
    await waitFor(cmd.subscribe.bind(cmd), (s) => stateOf(s) === 'gaveUp', 'the give-up');
    await ws.stop();
    const byMsg = (msg: string) => records.filter((r) => r.msg === msg);

    const [created] = byMsg('workspace created');
    assert.equal(created?.ws, ws.id);
    assert.equal(created?.label, 'logged');

    const spawned = byMsg('command spawned');
    assert.equal(spawned.length, 3);
    assert.deepEqual(spawned.map((r) => r.restarts), [0, 1, 2]);
    assert.ok(spawned.every((r) => typeof r.pid === 'number' && r.label === 'loser'));

    const exited = byMsg('command exited');
    assert.equal(exited.length, 3);
    assert.ok(exited.every((r) => r.status === 1 && r.code === 1));

    const restarts = byMsg('command failed; restarting after backoff');
    assert.deepEqual(restarts.map((r) => [r.restarts, r.backoffMs]), [[0, 1], [1, 2]]);
    assert.ok(restarts.every((r) => r.level === 40));

    const [gaveUp] = byMsg('command failed too often; giving up');
    assert.equal(gaveUp?.restarts, 2);
    assert.equal(gaveUp?.maxRestarts, 2);
    assert.equal(gaveUp?.level, 50);

    const [stopped] = byMsg('workspace stopped');
    assert.equal(stopped?.ws, ws.id);
    assert.equal(stopped?.reaped, 0);
    assert.equal(stopped?.reason, 'requested');
  });

  test("an actor's log at a level the logger drops is not sent; one the logger's level changed to takes is", async () => {
    const { logger, records } = capturingLogger('error');
    const rt = await startRuntime({ logger });
    const ws = await rt.createWorkspace({ label: 'quiet' });
    const policy = { onFailure: true, backoffMs: 1, maxRestarts: 1 };
    const first = await ws.run({ exec: '/bin/false', label: 'first', restart: policy });
    await waitFor(first.subscribe.bind(first), (s) => stateOf(s) === 'gaveUp', 'the first give-up');
    const byMsg = (msg: string) => records.filter((r) => r.msg === msg);
    assert.deepEqual(byMsg('command failed; restarting after backoff'), []);
    assert.equal(byMsg('command failed too often; giving up').length, 1, 'at the logger\'s level it is sent');
    // The worker threads follow the logger's level as it changes.
    logger.level = 'warn';
    const second = await ws.run({ exec: '/bin/false', label: 'second', restart: policy });
    await waitFor(second.subscribe.bind(second), (s) => stateOf(s) === 'gaveUp', 'the second give-up');
    assert.deepEqual(byMsg('command failed; restarting after backoff').map((r) => r.label), ['second']);
    await ws.stop();
  });
});
