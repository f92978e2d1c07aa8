import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { Command } from '../src/index.js';
import { ManualClock } from '../src/testing/index.js';
import { fixture, reach, startRuntime, stateOf } from './helpers.js';

describe('restart with exponential backoff (seed 8)', () => {
  test('delays double from backoffMs to maxBackoffMs; count carries over; gives up at maxRestarts', async () => {
    const clock = new ManualClock();
    const rt = await startRuntime({ clock });
    const ws = await rt.createWorkspace({ label: 'crashloop' });
    const backoff = nextStateOnce();
    const cmd = await ws.run({
      exec: '/bin/false',
      restart: { onFailure: true, backoffMs: 200, maxBackoffMs: 1000, maxRestarts: 5 },
    });
    const delays: number[] = [];
    let snapshot = await backoff(cmd);
    while (stateOf(snapshot) === 'backoff') {
      const { backoffDeadline, stampedAt } = snapshot.context as { backoffDeadline: number; stampedAt: number };
      const delay = backoffDeadline - stampedAt;
      delays.push(delay);
      const after = reach(cmd, ['running']);
      // One ms short of the deadline nothing happens; at the deadline the relaunch starts.
      await clock.advance(delay - 1);
      assert.equal(stateOf(cmd.getSnapshot()), 'backoff');
      await clock.advance(1);
      await after;
      snapshot = await reach(cmd, ['backoff', 'gaveUp']);
    }
    assert.deepEqual(delays, [200, 400, 800, 1000, 1000]);
    assert.equal(stateOf(snapshot), 'gaveUp');
    assert.equal(snapshot.context.restarts, 5);
    const runs = await ws.commands();
    assert.equal(runs.length, 6);
    assert.deepEqual(runs.map((r) => r.restarts), [0, 1, 2, 3, 4, 5]);
    assert.equal(new Set(runs.map((r) => r.id)).size, 6, 'every relaunch gets a new id');
    assert.ok(runs.every((r) => r.commandKey === cmd.commandKey && r.exitStatus === 1));
  });

  test('exit 0 ends supervision', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'shuma-flaky-'));
    try {
      const rt = await startRuntime();
      const ws = await rt.createWorkspace({ label: 'flaky' });
      const cmd = await ws.run({
        exec: fixture('flaky.sh'),
        argv: ['3', path.join(dir, 'count')],
        restart: { onFailure: true, backoffMs: 1 },
      });
      const final = await reach(cmd, ['exited']);
      assert.equal(final.context.restarts, 2);
      const runs = await ws.commands();
      assert.deepEqual(runs.map((r) => r.exitStatus), [1, 1, 0]);
      assert.equal((await ws.logs(runs[2]!.id)).toString(), 'run 3\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('without a restart policy a failure is final', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'once' });
    const cmd = await ws.run({ exec: '/bin/false' });
    assert.equal((await cmd.exited).status, 1);
    const final = await reach(cmd, ['exited']);
    assert.equal(final.context.restarts, 0);
    assert.equal((await ws.commands()).length, 1);
  });

  test('a run that lasted resetAfterMs starts the backoff again from backoffMs', async () => {
    const clock = new ManualClock();
    const rt = await startRuntime({ clock });
    const ws = await rt.createWorkspace({ label: 'rarely' });
    const backoff = nextStateOnce();
    const cmd = await ws.run({
      exec: fixture('forever.sh'),
      restart: { onFailure: true, backoffMs: 100, maxBackoffMs: 10_000, resetAfterMs: 5_000 },
    });
    // Two quick failures: 100, then 200.
    const quickFailures = async (expected: number) => {
      process.kill((await ws.commands()).at(-1)!.pid, 'SIGKILL');
      const s = await backoff(cmd);
      const { backoffDeadline, stampedAt } = s.context as { backoffDeadline: number; stampedAt: number };
      assert.equal(backoffDeadline - stampedAt, expected);
      const running = reach(cmd, ['running']);
      await clock.advance(expected);
      await running;
    };
    await reach(cmd, ['running']);
    await quickFailures(100);
    await quickFailures(200);
    await clock.advance(5_000); // a stable run
    await quickFailures(100);
  });
});

/** Waits for the next entry into backoff (or the end), ignoring the state the command is in now. */
function nextStateOnce() {
  return (cmd: Command) => reach(cmd, ['backoff', 'gaveUp', 'exited', 'stopped']);
}
