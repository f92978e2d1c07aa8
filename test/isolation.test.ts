import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { coreOf } from '../src/host/runtime.js';
import { fixture, isAlive, pollUntil, startRuntime, waitFor, waitForOutput } from './helpers.js';

describe('one actor failing', () => {
  test('a throwing workspace actor does not affect its neighbours in the same worker', async () => {
    const rt = await startRuntime({ workers: 1 });
    const faulty = await rt.createWorkspace({ label: 'faulty' });
    const healthy = await rt.createWorkspace({ label: 'healthy' });
    const doomed = await faulty.run({ exec: fixture('forever.sh') });
    const survivor = await healthy.run({ exec: fixture('forever.sh') });
    await waitForOutput(faulty, doomed.id, 'ready');
    const failed = waitFor(faulty.subscribe.bind(faulty), (s) => s.status === 'error', 'the faulty actor to fail');
    coreOf(rt).injectFault(faulty.id, 'injected by the isolation test');
    const snapshot = await failed;
    assert.equal(snapshot.error?.message, 'injected by the isolation test');
    // Nothing supervises the failed workspace's processes any more: they are killed.
    assert.equal((await doomed.exited).signal, 'SIGKILL');
    // Forgotten once nothing of it is left (its removal follows the last exit by a turn or two).
    await pollUntil<boolean>(
      () => rt.workspace(faulty.id) === undefined,
      (gone) => gone,
      'the failed workspace forgotten',
    );
    // The neighbour, hosted by the same thread, goes on: its command runs, new ones start, it stops cleanly.
    assert.equal(isAlive(survivor.pid), true);
    const more = await healthy.run({ exec: '/bin/sh', argv: ['-c', 'echo still here'] });
    await more.exited;
    assert.equal((await healthy.logs(more.id)).toString(), 'still here\n');
    assert.deepEqual(await healthy.stop({ graceMs: 100 }), { reaped: 1, escaped: [] });
  });
});
