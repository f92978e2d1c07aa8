import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { coreOf } from '../src/host/runtime.js';
import type { Command, Runtime } from '../src/index.js';
import type { SpawnedProcess, SpawnOrder } from '../src/host/spawn/spawner.js';
import { capturingLogger, isAlive, pollUntil, processesMentioning, startRuntime, stateOf, untilState, waitFor } from './helpers.js';
import { wrapSpawner } from './wrapped-spawner.js';

// A user's order (a stop, a run) sent to an actor whose worker thread dies before it handled
// it: the actor comes back on a new thread from its last snapshot, which does not hold the
// order. The order must not be lost with the thread: the awaited call settles, and what it
// asked for happens (nothing is left running after a stop; a run is supervised, and once).

const ROUNDS = 6;

/**
 * Kills the actor thread some moments after an order: at once (the order still queued in the
 * channel), after the channel's flush, or a little later (the thread may have handled it).
 */
async function killWorkerAfter(rt: Runtime, round: number): Promise<void> {
  const restartsBefore = (await rt.health()).workerRestarts;
  const moment = round % 3;
  if (moment === 1) await new Promise((resolve) => setImmediate(resolve));
  if (moment === 2) await new Promise((resolve) => setTimeout(resolve, round));
  // With one worker, every thread listed is it (or, a moment after a death, the dead one still).
  await Promise.all(coreOf(rt).workerThreads.map((thread) => (thread as { terminate(): Promise<number> }).terminate()));
  await pollUntil(async () => (await rt.health()).workerRestarts, (n) => n === restartsBefore + 1, 'the worker thread replaced');
}

/** Spawns whose arguments hold `marker` wait for release(); every one asked for is in `spawns`. */
function holdSpawnsOf(rt: Runtime, marker: string): { spawns: SpawnOrder[]; release(): void } {
  const spawns: SpawnOrder[] = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  wrapSpawner(rt, async (order, real): Promise<SpawnedProcess> => {
    if (!order.args.includes(marker)) return real.spawn(order);
    spawns.push(order);
    await released;
    return real.spawn(order);
  });
  return { spawns, release: () => release() };
}

/** Events to actors that `drops` picks are lost on their way (counted), until `restore()`. */
function loseEventsOf(rt: Runtime, drops: (event: { type: string }) => boolean): { lost(): number; restore(): void } {
  const pool = coreOf(rt).pool;
  const send = pool.send.bind(pool);
  let lost = 0;
  pool.send = (index, message) => {
    if ((message.type === 'workspaceEvent' || message.type === 'childEvent') && drops(message.event)) lost++;
    else send(index, message);
  };
  return { lost: () => lost, restore: () => void (pool.send = send) };
}

/** The awaited call settles at all: what hangs forever is what this file is about. */
function settles<T>(promise: Promise<T>, what: string, timeoutMs = 15_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} still pending ${timeoutMs} ms after the worker thread was replaced`)), timeoutMs);
  });
  return Promise.race([promise, hung]).finally(() => clearTimeout(timer));
}

describe('an order in flight to a worker thread that dies', () => {
  test('ws.stop() sent just before the thread dies: it settles, the workspace is gone, nothing runs on', async () => {
    const rt = await startRuntime({ workers: 1, statsIntervalMs: 0 });
    for (let round = 0; round < ROUNDS; round++) {
      const ws = await rt.createWorkspace({ label: `stopped-${round}` });
      // Every run of this round, relaunches included, says so in its command line.
      const seconds = `1000.${process.pid}${round}`;
      const oneShot = await ws.run({ exec: 'sleep', argv: [seconds] });
      const supervised = await ws.run({ exec: 'sleep', argv: [seconds], restart: { onFailure: true, always: true, backoffMs: 1 } });
      const stopping = ws.stop({ graceMs: 100 });
      await killWorkerAfter(rt, round);
      const result = await settles(stopping, `ws.stop() of round ${round}`);
      assert.ok(result.reaped >= 2, `round ${round}: both runs reaped (${result.reaped})`);
      assert.equal(rt.workspace(ws.id), undefined, `round ${round}: the handle is gone`);
      assert.deepEqual((await rt.listWorkspaces()).filter((w) => w.id === ws.id), [], `round ${round}: not listed`);
      assert.deepEqual([isAlive(oneShot.pid), isAlive(supervised.pid)], [false, false], `round ${round}: no process left`);
      assert.deepEqual(processesMentioning(seconds), [], `round ${round}: no run alive, none relaunched`);
    }
  });

  test('ws.stopCommand() sent just before the thread dies: it settles, the command stays stopped, its workspace goes on', async () => {
    const rt = await startRuntime({ workers: 1, statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'one-command-stopped' });
    const neighbour = await ws.run({ exec: 'sleep', argv: ['1000'] });
    for (let round = 0; round < ROUNDS; round++) {
      const label = `service-${round}`;
      const service = await ws.run({ exec: 'sleep', argv: ['1000'], label, restart: { onFailure: true, always: true, backoffMs: 1 } });
      const stopping = ws.stopCommand(label, { graceMs: 100 });
      await killWorkerAfter(rt, round);
      await settles(stopping, `stopCommand of round ${round}`);
      assert.equal(isAlive(service.pid), false, `round ${round}: its run is gone`);
      const runs = (await ws.commands()).filter((c) => c.label === label);
      assert.deepEqual(runs.filter((c) => c.alive), [], `round ${round}: not relaunched`);
    }
    assert.equal(isAlive(neighbour.pid), true, 'the workspace and its other command went on');
    await settles(ws.stop({ graceMs: 0 }), 'the final stop');
    assert.equal(isAlive(neighbour.pid), false);
  });

  test('pipeline.stop() sent just before the thread dies: it settles, its nodes are gone', async () => {
    const rt = await startRuntime({ workers: 1, statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'pipelines-stopped' });
    for (let round = 0; round < ROUNDS; round++) {
      const pipeline = await rt.runPipeline({
        label: `endless-${round}`,
        workspace: ws.id,
        nodes: [
          { label: 'gen', exec: 'sleep', argv: ['1000'] },
          { label: 'sink', exec: 'cat' },
        ],
        edges: [{ from: 'gen', to: 'sink' }],
        restart: { onFailure: true, backoffMs: 1 },
      });
      const stopping = pipeline.stop({ graceMs: 100 });
      await killWorkerAfter(rt, round);
      await settles(stopping, `pipeline.stop() of round ${round}`);
      await settles(pipeline.done, `pipeline.done of round ${round}`);
      assert.deepEqual(pipeline.nodes.filter((node) => isAlive(node.pid)), [], `round ${round}: no node left`);
    }
    await settles(ws.stop({ graceMs: 0 }), 'the final stop');
  });

  test('ws.run() sent just before the thread dies: it settles with the one run its actor supervises', async () => {
    const rt = await startRuntime({ workers: 1, statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'runs' });
    const supervisedRuns: Command[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // One started ahead by the host (no probe), one only once its actor asks (a probe).
      const ahead = ws.run({ exec: 'sleep', argv: ['1000'], label: `ahead-${round}`, restart: { onFailure: true, always: true, backoffMs: 1 } });
      const asked = ws.run({ exec: 'sleep', argv: ['1000'], label: `asked-${round}`, ready: { exec: ['true'] } });
      await killWorkerAfter(rt, round);
      const runs = await settles(Promise.all([ahead, asked]), `ws.run() of round ${round}`);
      for (const run of runs) {
        const running = await untilState(run, 'running');
        assert.equal(running.context.runId, run.id, `round ${round}: ${run.label}'s actor supervises the run run() gave`);
        const ofCommand = (await ws.commands()).filter((c) => c.label === run.label);
        assert.deepEqual(ofCommand.map((c) => [c.id, c.alive]), [[run.id, true]], `round ${round}: ${run.label} ran once`);
      }
      supervisedRuns.push(runs[0]);
    }
    // Supervised indeed: a run killed from outside is relaunched.
    const victim = supervisedRuns[0]!;
    process.kill(victim.pid, 'SIGKILL');
    await pollUntil(() => ws.commands(), (list) => list.some((c) => c.label === victim.label && c.id !== victim.id && c.alive), 'the killed run relaunched');
    await settles(ws.stop({ graceMs: 0 }), 'the final stop');
  });

  // The interleaving behind a duplicate run seen under load: the thread asked for the spawn and
  // its snapshot (the command `starting`) reached the host with the request; the thread died
  // while the spawn was under way, so re-hosting found the actor `starting` with no run in the
  // process table, and asked for its spawn again. Held here so that it happens every time.
  test('a spawn under way as the thread dies is not asked again: the command runs once', async () => {
    const rt = await startRuntime({ workers: 1, statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'spawn-under-way' });
    const marker = `1000.${process.pid}7`;
    const { spawns, release } = holdSpawnsOf(rt, marker);
    const entry = coreOf(rt).registry.get(ws.id)!;
    const asked = ws.run({ exec: 'sleep', argv: [marker], label: 'asked', ready: { exec: ['true'] } });
    await pollUntil(() => spawns.length, (n) => n === 1, 'the spawn asked for');
    const persisted = JSON.stringify(entry.persisted);
    assert.ok(persisted.includes('"starting"'), `the snapshot re-hosting starts from holds the command starting: ${persisted.slice(0, 200)}`);
    await killWorkerAfter(rt, 0);
    release();
    const run = await settles(asked, 'ws.run()');
    const running = await untilState(run, 'running');
    assert.equal(running.context.runId, run.id, 'its actor supervises the run run() gave');
    const ofCommand = (await ws.commands()).filter((c) => c.label === 'asked');
    assert.deepEqual(ofCommand.map((c) => [c.id, c.alive]), [[run.id, true]], 'one run');
    assert.equal(spawns.length, 1, 'spawned once');
    await pollUntil(() => processesMentioning(marker).length, (n) => n === 1, 'one process of the command');
    await settles(ws.stop({ graceMs: 0 }), 'the final stop');
    assert.deepEqual(processesMentioning(marker), []);
  });

  test('a pipeline spawn under way as the thread dies is not asked again: each node runs once', async () => {
    const rt = await startRuntime({ workers: 1, statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'pipeline-spawn-under-way' });
    const marker = `1000.${process.pid}8`;
    const { spawns, release } = holdSpawnsOf(rt, marker);
    const entry = coreOf(rt).registry.get(ws.id)!;
    const running = rt.runPipeline({
      label: 'held',
      workspace: ws.id,
      nodes: [
        { label: 'gen', exec: 'sleep', argv: [marker] },
        { label: 'sink', exec: 'cat' },
      ],
      edges: [{ from: 'gen', to: 'sink' }],
    });
    await pollUntil(() => spawns.length, (n) => n === 1, 'the spawn asked for');
    assert.ok(JSON.stringify(entry.persisted).includes('"pipeline"'), 'the snapshot re-hosting starts from holds the pipeline');
    await killWorkerAfter(rt, 0);
    release();
    const pipeline = await settles(running, 'runPipeline()');
    // Every spawn asked for is over (a second one, on the old code, had been asked as the thread was replaced).
    await pollUntil(() => entry.pendingSpawns, (n) => n === 0, 'no spawn under way');
    assert.equal(spawns.length, 1, 'its first node spawned once');
    assert.deepEqual(pipeline.nodes.map((node) => isAlive(node.pid)), [true, true]);
    await pollUntil(() => processesMentioning(marker).length, (n) => n === 1, 'one process of its first node');
    await settles(pipeline.stop({ graceMs: 0 }), 'pipeline.stop()');
    await settles(ws.stop({ graceMs: 0 }), 'the final stop');
    assert.deepEqual(processesMentioning(marker), []);
  });

  // An order the runtime gives itself: the quota actor reports a breach once per episode, so a
  // QUOTA_BREACH lost with its thread was never told again, and the workspace ran on past its quota.
  test("a quota kill sent to a thread that dies before it reads it: the workspace is stopped all the same", async () => {
    const rt = await startRuntime({ workers: 1, statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'quota-killed', limits: { nproc: 1 }, quota: { nproc: 'kill' } });
    const marker = `1000.${process.pid}9`;
    const runs = [await ws.run({ exec: 'sleep', argv: [marker] }), await ws.run({ exec: 'sleep', argv: [marker] })];
    // The breach leaves for the thread, which dies before reading it: it goes with the thread.
    const breaches = loseEventsOf(rt, (event) => event.type === 'QUOTA_BREACH');
    const stopped = waitFor(ws.subscribe.bind(ws), (s) => stateOf(s) === 'stopped', 'the quota stop');
    await ws.stats();
    assert.equal(breaches.lost(), 1, 'the breach was reported (and lost)');
    breaches.restore();
    await killWorkerAfter(rt, 0);
    const final = await settles(stopped, 'the quota stop');
    assert.equal(final.context.stopReason, 'quota');
    assert.deepEqual(runs.map((run) => isAlive(run.pid)), [false, false], 'no process left past its quota');
    assert.deepEqual(processesMentioning(marker), []);
  });

  // The same for a breach that only warns: lost with its thread, the breach went unwarned for
  // as long as the episode lasted. A warning already logged is not told again.
  test("a quota warning sent to a thread that dies before it reads it is logged all the same, and once", async () => {
    const { logger, records } = capturingLogger('warn');
    const rt = await startRuntime({ workers: 1, statsIntervalMs: 0, logger });
    const warned = (label: string) => records.filter((r) => r.label === label && r.msg.startsWith('quota breach: nproc'));
    const crowded = async (label: string) => {
      const ws = await rt.createWorkspace({ label, limits: { nproc: 1 }, quota: { nproc: 'log' } });
      for (let i = 0; i < 2; i++) await ws.run({ exec: 'sleep', argv: ['1000'] });
      return ws;
    };
    // One workspace's warning is logged before the thread dies; the other's goes with the thread.
    const logged = await crowded('warned-before');
    await logged.stats();
    await pollUntil(() => warned('warned-before').length, (n) => n === 1, 'the first warning');
    const lostWs = await crowded('warning-lost');
    const breaches = loseEventsOf(rt, (event) => event.type === 'QUOTA_BREACH');
    await lostWs.stats();
    assert.equal(breaches.lost(), 1, 'the breach was reported (and lost)');
    breaches.restore();
    await killWorkerAfter(rt, 0);
    await pollUntil(() => warned('warning-lost').length, (n) => n >= 1, 'the lost warning, told again');
    // Anything the re-hosted thread says after the retelling comes after its warnings.
    const after = await lostWs.run({ exec: 'true' });
    await settles(after.exited, 'a run after the re-hosting');
    assert.equal(warned('warning-lost').length, 1, 'warned once');
    assert.equal(warned('warned-before').length, 1, 'a warning logged before the thread died is not told again');
    await Promise.all([logged.stop({ graceMs: 0 }), lostWs.stop({ graceMs: 0 })]);
  });

  // A line or notify probe speaks once: its "ready" lost with the thread left the re-hosted
  // actor `up` (not ready) until its start timeout ended a run that was ready all along.
  test("a one-shot probe's \"ready\" sent to a thread that dies before it reads it: the command is ready all the same", async () => {
    const rt = await startRuntime({ workers: 1, statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'ready-lost' });
    const probeResults = loseEventsOf(rt, (event) => event.type === 'PROBE_RESULT');
    const cmd = await ws.run({ exec: 'sh', argv: ['-c', 'echo ready; exec sleep 1000'], label: 'said-once', ready: { line: '^ready$' } });
    await pollUntil(() => probeResults.lost(), (n) => n === 1, 'the readiness said (and lost)');
    probeResults.restore();
    await killWorkerAfter(rt, 0);
    const running = await settles(untilState(cmd, 'running'), 'the command ready');
    assert.equal(running.context.runId, cmd.id, 'the run its actor supervises is the first');
    assert.equal(isAlive(cmd.pid), true);
    await settles(ws.stop({ graceMs: 0 }), 'the final stop');
  });

  // A run its supervisor ends (not ready in time, unhealthy) gets SIGTERM, and SIGKILL past a
  // grace: a timer of the actor's, which a thread's death must not take along with it.
  test('a run being ended (SIGTERM ignored) as the thread dies: it is still killed past its grace', async () => {
    const rt = await startRuntime({ workers: 1, statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'ending' });
    // Ignored before the exec, ignored by sleep: only SIGKILL ends it.
    const cmd = await ws.run({ exec: 'sh', argv: ['-c', "trap '' TERM; exec sleep 1000"], label: 'stubborn', ready: { exec: ['false'], intervalMs: 20, startTimeoutMs: 100 } });
    await untilState(cmd, 'ending');
    await killWorkerAfter(rt, 0);
    const exit = await settles(cmd.exited, 'the run ended');
    assert.equal(exit.signal, 'SIGKILL');
    await settles(ws.stop({ graceMs: 0 }), 'the final stop');
  });

  test('a pipeline stopping (a node ignores SIGTERM) as the thread dies: its nodes are still killed past the grace', async () => {
    const rt = await startRuntime({ workers: 1, statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'pipeline-stopping' });
    const pipeline = await rt.runPipeline({
      label: 'stubborn',
      workspace: ws.id,
      nodes: [
        { label: 'gen', exec: 'sh', argv: ['-c', "trap '' TERM; exec sleep 1000"] },
        { label: 'sink', exec: 'cat' },
      ],
      edges: [{ from: 'gen', to: 'sink' }],
    });
    const stopping = pipeline.stop({ graceMs: 300 });
    await waitFor(pipeline.subscribe.bind(pipeline), (s) => JSON.stringify(s.value) === '{"stopping":"terminating"}', 'the pipeline stopping');
    await killWorkerAfter(rt, 0);
    await settles(stopping, 'pipeline.stop()');
    assert.deepEqual(pipeline.nodes.filter((node) => isAlive(node.pid)), [], 'no node left');
    await settles(ws.stop({ graceMs: 0 }), 'the final stop');
  });
});
