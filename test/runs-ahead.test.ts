import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import type { ActorSnapshot } from '../src/index.js';
import { coreOf } from '../src/host/runtime.js';
import { MAX_AHEAD, tapToChild, watchHost } from './ahead-watch.js';
import { isAlive, startRuntime, stateOf, waitFor, waitGone } from './helpers.js';

// A run started ahead of its actor carries the standing order too (standing-orders.ts): when it
// exits before the actor has asked for it, the run after it starts at once, up to eight runs
// ahead, and the actor is told of each in order once it asks. Here the actor's requests are
// held on the main thread (the worker "does not answer") to see the host run on without it.

describe('runs ahead of an actor that does not answer', () => {
  test(`a crash loop runs on up to ${MAX_AHEAD} runs ahead, then waits; the actor then hears every run in order`, async (t) => {
    const rt = await startRuntime();
    if ((await rt.health()).spawner !== 'native') return t.skip('child_process does not act ahead: every relaunch waits for the actor');
    const ws = await rt.createWorkspace({ label: 'ahead-chain' });
    const watch = watchHost(rt);
    t.after(() => watch.release());
    const heard = tapToChild(rt, 'loop');
    const restarts = 30;
    const cmd = await ws.run({ exec: '/bin/false', label: 'loop', restart: { onFailure: true, backoffMs: 0, maxRestarts: restarts } });
    const key = cmd.commandKey;
    const states: string[] = [];
    const unsubscribe = cmd.subscribe((s: ActorSnapshot) => states.push(`${stateOf(s)}${String(s.context.restarts)}`));
    // Run 0 (asked for) and runs 1..MAX_AHEAD, while the actor's request for run 1 is held.
    const table = coreOf(rt).table;
    const lastExit = () => {
      const last = table.ofWorkspace(ws.id).find((run) => run.key === key && run.restarts === MAX_AHEAD);
      return watch.exits.find((exit) => exit.runId === last?.id);
    };
    await watch.until(() => lastExit() !== undefined, `run ${MAX_AHEAD}'s exit`);
    assert.equal(lastExit()!.spawnsAfter, 1 + MAX_AHEAD, 'a run started past the bound');
    assert.equal(watch.spawns, 1 + MAX_AHEAD);
    // Meanwhile the actor heard of run 0 only: it asked for run 1 and waits.
    assert.deepEqual(heard, ['s0', 'x0']);
    assert.ok(!states.some((s) => /^running[1-9]/.test(s)), JSON.stringify(states));
    watch.release();
    await waitFor(cmd.subscribe.bind(cmd), (s) => stateOf(s) === 'gaveUp', 'the give-up');
    unsubscribe();
    // Told after the fact, in order: each run spawned, then its exit, every count once.
    assert.deepEqual(heard, Array.from({ length: restarts + 1 }, (_, k) => [`s${k}`, `x${k}`]).flat());
    assert.equal(cmd.getSnapshot()!.context.restarts, restarts);
    // One process per run, no more: the table keeps the latest ended ones.
    assert.equal(watch.spawns, restarts + 1);
    const runs = table.ofWorkspace(ws.id).filter((run) => run.key === key);
    assert.deepEqual(runs.map((run) => run.restarts), Array.from({ length: runs.length }, (_, k) => restarts + 1 - runs.length + k));
    for (const run of runs) assert.equal(isAlive(run.pid), false);
    const trail = (await ws.why(cmd.id)).map((entry) => entry.text);
    assert.equal(trail.filter((text) => text === 'exited 1').length >= 10, true, JSON.stringify(trail));
    await ws.stop({ graceMs: 0 });
  });

  test('stopped alone with runs ahead: the first is still told, the others killed and never told; the reads agree at once', async (t) => {
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(String((JSON.parse(line) as { msg: unknown }).msg)) });
    const rt = await startRuntime({ logger });
    if ((await rt.health()).spawner !== 'native') return t.skip('child_process does not act ahead: every relaunch waits for the actor');
    const ws = await rt.createWorkspace({ label: 'ahead-chain-stop' });
    for (let round = 0; round < 5; round++) {
      const watch = watchHost(rt);
      const heard = tapToChild(rt, `loop-${round}`);
      // Sleeps a little, then fails: some runs ahead are alive as the stop comes, some have exited.
      const cmd = await ws.run({ exec: 'sh', argv: ['-c', `sleep 0.0${round}; exit 3`], label: `loop-${round}`, restart: { onFailure: true, backoffMs: 0, maxRestarts: 0 } });
      const ahead = 3 + round;
      await watch.until(() => watch.spawns >= 1 + ahead, `${ahead} runs ahead`);
      const stopping = ws.stopCommand(`loop-${round}`, { graceMs: 0 });
      watch.release();
      await stopping;
      assert.equal(stateOf(cmd.getSnapshot()), 'stopped', `round ${round}`);
      assert.deepEqual(warnings.filter((msg) => msg.includes('did not catch up')), [], `round ${round}: a read waited for a run its actor never asked for`);
      // The actor heard run 0, then run 1 (asked before the stop), and no other.
      assert.deepEqual(heard, ['s0', 'x0', 's1', 'x1'], `round ${round}`);
      // Every process started, the ones whose spawn was under way at the stop too, is gone.
      await watch.until(() => watch.pids.length === watch.spawns, 'every spawn done');
      for (const pid of watch.pids) await waitGone(pid);
      const trail = (await ws.why(cmd.id)).map((entry) => entry.text);
      assert.ok(trail.some((text) => text.startsWith('stopped')), `round ${round}: ${JSON.stringify(trail)}`);
    }
    await ws.stop({ graceMs: 0 });
  });
});
