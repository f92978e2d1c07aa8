import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ShumaError, type ActorSnapshot } from '../src/index.js';
import { isAlive, startRuntime, waitFor, waitGone } from './helpers.js';

// A command whose policy relaunches at once gives the host a standing order with each spawn
// request: the host starts the next run at the exit, before the actor has heard it, and tells
// the actor of it once the actor asks (host/main-actors/standing-orders.ts). The actor's story
// must be the one it always was, on both spawners; a run the actor never asks for is killed.

function stateOf(snapshot: ActorSnapshot | null): string {
  if (!snapshot) return '(none)';
  return typeof snapshot.value === 'string' ? snapshot.value : (Object.keys(snapshot.value)[0] ?? '');
}

describe('restarts on standing orders', () => {
  test('a crash loop: every run is told to its actor, spawned before exited, counted up to maxRestarts, none left', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'standing-loop' });
    const restarts = 40;
    const cmd = await ws.run({ exec: '/bin/false', label: 'loop', restart: { onFailure: true, backoffMs: 0, maxRestarts: restarts } });
    const told: Array<{ runId: unknown; state: string; restarts: unknown }> = [];
    const unsubscribe = cmd.subscribe((s) => told.push({ runId: s.context.runId, state: stateOf(s), restarts: s.context.restarts }));
    await waitFor(cmd.subscribe.bind(cmd), (s) => stateOf(s) === 'gaveUp', 'the give-up');
    unsubscribe();
    const final = cmd.getSnapshot()!;
    assert.equal(final.context.restarts, restarts);
    // Each run the actor ran, it ran once: runs follow each other, the count rising by one.
    const running = told.filter((t) => t.state === 'running');
    const runIds = running.map((t) => t.runId);
    assert.equal(new Set(runIds).size, runIds.length, 'a run was told twice');
    const first = Number(running[0]?.restarts);
    assert.deepEqual(running.map((t) => t.restarts), running.map((_, i) => first + i));
    assert.equal(running.at(-1)?.restarts, restarts);
    // The process table agrees: every run of the command ended, and the actor heard each one.
    const runs = (await ws.commands()).filter((c) => c.label === 'loop');
    assert.ok(runs.length > 0);
    for (const run of runs) {
      assert.equal(run.alive, false, `run ${run.id} is alive after the give-up`);
      assert.equal(isAlive(run.pid), false);
    }
    const trail = (await ws.why(cmd.id)).map((entry) => entry.text);
    // The trail (its latest entries) tells run after run: spawned, then its exit, never two at once.
    const told2 = trail.filter((text) => text.startsWith('spawned') || text === 'exited 1').map((text) => (text === 'exited 1' ? 'x' : 's'));
    assert.ok(told2.length >= 10, JSON.stringify(trail));
    assert.ok(!/ss|xx/.test(told2.join('')), `spawned and exited do not alternate: ${JSON.stringify(trail)}`);
    assert.equal(told2.at(-1), 'x');
    await ws.stop({ graceMs: 0 });
  });

  test('stopped alone while it crash-loops (30 times): the actor stopped, no run alive, the reads agree at once', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'standing-stop' });
    for (let round = 0; round < 30; round++) {
      const cmd = await ws.run({ exec: '/bin/false', label: `loop-${round}`, restart: { onFailure: true, backoffMs: 0, maxRestarts: 0 } });
      // Stopped at a different point of the loop each round: the stop meets exits under way.
      await waitFor(cmd.subscribe.bind(cmd), (s) => Number(s.context.restarts) >= 1 + (round % 5), 'some restarts');
      await ws.stopCommand(`loop-${round}`, { graceMs: 0 });
      const started = Date.now();
      const snapshot = cmd.getSnapshot();
      assert.ok(Date.now() - started < 500, `round ${round}: getSnapshot() waited ${Date.now() - started} ms for a run its actor never asked for`);
      assert.equal(stateOf(snapshot), 'stopped', `round ${round}`);
      const runs = (await ws.commands()).filter((c) => c.label === `loop-${round}`);
      // A run started ahead and never asked for is killed: it may take a moment to be gone.
      for (const run of runs) await waitGone(run.pid);
      const trail = (await ws.why(cmd.id)).map((entry) => entry.text);
      assert.ok(trail.some((text) => text.startsWith('stopped')), `round ${round}: ${JSON.stringify(trail)}`);
    }
    await ws.stop({ graceMs: 0 });
  });

  // The stop is asked on the main thread; the actor's signal, which revokes the order, comes a
  // round trip later. A run that exits in between must not be relaunched: no run starts after
  // its stop was asked (and none is killed without the stop's grace for it).
  test('stopped alone as its run exits (30 times): no run starts after the stop was asked', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'standing-stop-exit' });
    for (let round = 0; round < 30; round++) {
      const label = `loop-${round}`;
      const cmd = await ws.run({ exec: 'sleep', argv: ['30'], label, restart: { onFailure: true, backoffMs: 0, maxRestarts: 0 } });
      const running = await waitFor(cmd.subscribe.bind(cmd), (s) => stateOf(s) === 'running', 'the first run');
      const stopping = ws.stopCommand(label, { graceMs: 5000 });
      // Its run fails as the stop is on its way: what the actor decides after the stop is to stop.
      process.kill(Number(running.context.pid), 'SIGKILL');
      await stopping;
      assert.equal(stateOf(cmd.getSnapshot()), 'stopped', `round ${round}`);
      const runs = (await ws.commands()).filter((c) => c.label === label);
      assert.deepEqual(runs.map((run) => run.pid), [running.context.pid], `round ${round}: a run started after the stop was asked`);
    }
    await ws.stop({ graceMs: 0 });
  });

  // A command that waits for nothing has its first run started as it is run, before its actor
  // asks (runAhead): a workspace stopping meanwhile must leave nothing, and run() say what the actor says.
  test('a command run as its workspace stops (40 times): run() settles as before, no process is left', async () => {
    const rt = await startRuntime();
    for (let round = 0; round < 40; round++) {
      const ws = await rt.createWorkspace({ label: `ahead-stop-${round}` });
      const marker = `shuma-ahead-${process.pid}-${round}`;
      const running = ws.run({ exec: 'sh', argv: ['-c', 'exec sleep 30', marker], label: 'sleeper' });
      // Stopped at a different moment of the run each round: before, while and after it spawns.
      if (round % 4 === 1) await Promise.resolve();
      if (round % 4 === 2) await new Promise((resolve) => setImmediate(resolve));
      if (round % 4 === 3) await running.catch(() => undefined);
      const stopping = ws.stop({ graceMs: 0 });
      const outcome = await running.then((cmd) => ({ cmd, error: null }), (error: unknown) => ({ cmd: null, error }));
      await stopping;
      if (outcome.cmd) assert.notEqual(stateOf(outcome.cmd.getSnapshot()), 'starting', `round ${round}: run() settled before the actor had the run`);
      else assert.ok(outcome.error instanceof ShumaError, `round ${round}: ${String(outcome.error)}`);
      assert.deepEqual(processesWith(marker), [], `round ${round}: a process of the run outlived its workspace`);
    }
  });
});

/** Live processes whose command line has `marker`. */
function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'latin1').includes(marker) && isAlive(Number(entry))) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}
