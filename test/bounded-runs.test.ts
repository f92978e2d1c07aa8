import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ENDED_RUNS_KEPT } from '../src/host/processes/process-table.js';
import { startRuntime, waitFor } from './helpers.js';

describe('a crash loop does not grow the process table without bound', () => {
  test('only the newest ended runs of a command are kept; restarts, logs and describe still tell the whole story', async () => {
    const rt = await startRuntime();
    try {
      const ws = await rt.createWorkspace({ label: 'crashloop-memory' });
      const runs = 3 * ENDED_RUNS_KEPT + 1;
      const first = await ws.run({
        label: 'flaky',
        exec: '/bin/sh',
        argv: ['-c', 'echo attempt; exit 3'],
        restart: { onFailure: true, backoffMs: 0, maxRestarts: runs - 1 },
      });
      const snapshot = first.getSnapshot();
      if (snapshot?.status === 'active') await waitFor(first.subscribe.bind(first), (s) => s.status !== 'active', 'the command gave up');

      const infos = (await ws.commands()).filter((info) => info.label === 'flaky');
      assert.ok(infos.length <= 2 * ENDED_RUNS_KEPT, `${infos.length} runs kept of ${runs}`);
      assert.ok(infos.length >= ENDED_RUNS_KEPT, `the newest ${ENDED_RUNS_KEPT} runs are kept (${infos.length})`);
      assert.equal(infos.at(-1)!.restarts, runs - 1, 'the newest run still counts every relaunch');
      assert.equal(infos.at(-1)!.exitStatus, 3);
      assert.ok(!infos.some((info) => info.id === first.id), 'the first run was let go');

      const description = await ws.describe('flaky');
      assert.equal(description.restarts, runs - 1);
      assert.ok(description.runs.length > 0 && description.runs.every((run) => run.exit?.status === 3));

      const output = (await ws.logs('flaky')).toString();
      assert.match(output, /attempt/);
      assert.ok(output.split('attempt').length - 1 <= 2 * ENDED_RUNS_KEPT, 'logs read from kept runs only');
    } finally {
      await rt.shutdown({ graceMs: 0 });
    }
  });
});
