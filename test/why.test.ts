import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { quotaKilledWorkspace, startRuntime, stateOf, waitFor } from './helpers.js';

const texts = (entries: Array<{ text: string }>) => entries.map((e) => e.text.replace(/\(pid \d+, run \w+\)/, '(pid …)'));

describe('why(): the causal trail of commands and pipelines', () => {
  test('after a give-up it reads as the cause chain', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'why-giveup' });
    const cmd = await ws.run({ exec: '/bin/false', restart: { onFailure: true, backoffMs: 1, maxRestarts: 1 } });
    await waitFor(cmd.subscribe.bind(cmd), (s) => stateOf(s) === 'gaveUp', 'the give-up');
    assert.deepEqual(texts(await ws.why(cmd.id)), [
      'spawned (pid …)',
      'exited 1',
      'backoff 1 ms (restart 1)',
      'restarting (restart 1)',
      'spawned (pid …)',
      'exited 1',
      'gave up after 1 restarts',
    ]);
    // By commandKey too, and the entries carry their time.
    const byKey = await ws.why(cmd.commandKey);
    assert.equal(byKey.length, 7);
    assert.ok(byKey.every((e, i) => i === 0 || e.at >= byKey[i - 1]!.at));
    await assert.rejects(ws.why('nope'), { code: 'COMMAND_NOT_FOUND' });
  });

  test('after a quota kill it names the breach', async () => {
    const { ws, a } = await quotaKilledWorkspace('why-quota');
    // The workspace is gone; its commands' trails say why.
    assert.deepEqual(texts(await ws.why(a.id)), [
      'spawned (pid …)',
      'quota breach: nproc: 2 alive > 1 limit → kill',
      'killed by SIGKILL (status 137)',
      'stopped',
    ]);
  });

  test("a pipeline's trail: attempts, failures, backoff, stop", async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'why-pipeline' });
    const p = await rt.runPipeline({
      label: 'p',
      workspace: ws.id,
      nodes: [
        { label: 'f', exec: 'false' },
        { label: 'c', exec: 'cat' },
      ],
      edges: [{ from: 'f', to: 'c' }],
      restart: { onFailure: true, backoffMs: 60_000 },
    });
    await waitFor(p.subscribe.bind(p), (s) => stateOf(s) === 'backoff', 'the backoff');
    await p.stop();
    // Whether `f`'s exit was seen before `cat`'s is the kernel's business: that line may or may not be there.
    const trail = texts(await p.why()).filter((t) => !t.startsWith('failed while others run'));
    assert.deepEqual(trail, [
      'attempt 0 spawned (f, c)',
      'failed: f exited 1, c exited 0',
      'backoff 60000 ms (restart 1)',
      'stop requested',
      'stopped',
    ]);
  });
});
