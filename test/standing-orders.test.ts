import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { ShumaError, type ActorSnapshot, type Runtime } from '../src/index.js';
import { coreOf } from '../src/host/runtime.js';
import type { SpawnedProcess } from '../src/host/spawn/spawner.js';
import type { ChildEvent } from '../src/protocol/machine-events.js';
import { isAlive, processesMentioning, startRuntime, waitFor, waitGone } from './helpers.js';
import { wrapSpawner } from './wrapped-spawner.js';

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
    // A read that gave up waiting for the actor says so in the log (core/caught-up.ts): that, not
    // a stopwatch, tells whether getSnapshot() waited for a run its actor never asked for.
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(String((JSON.parse(line) as { msg: unknown }).msg)) });
    const rt = await startRuntime({ logger });
    const ws = await rt.createWorkspace({ label: 'standing-stop' });
    for (let round = 0; round < 30; round++) {
      const cmd = await ws.run({ exec: '/bin/false', label: `loop-${round}`, restart: { onFailure: true, backoffMs: 0, maxRestarts: 0 } });
      // Stopped at a different point of the loop each round: the stop meets exits under way.
      await waitFor(cmd.subscribe.bind(cmd), (s) => Number(s.context.restarts) >= 1 + (round % 5), 'some restarts');
      await ws.stopCommand(`loop-${round}`, { graceMs: 0 });
      const snapshot = cmd.getSnapshot();
      const gaveUp = warnings.filter((msg) => msg.includes('did not catch up'));
      assert.deepEqual(gaveUp, [], `round ${round}: getSnapshot() waited for a run its actor never asked for`);
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
      assert.deepEqual(processesMentioning(marker), [], `round ${round}: a process of the run outlived its workspace`);
    }
  });
});

describe('the exit that sets a relaunch off', () => {
  // Told first, the worker handled the exit while the next run was cloned and exec'd, and its
  // answer kept the loop from hearing of the exec (standing-orders.ts): the exit now waits for
  // the next run's spawn. Only a spawner that acts ahead relaunches on orders (the native one).
  test('reaches the actor once the next run has started; the last one, with no relaunch, at once', async (t) => {
    const rt = await startRuntime();
    if ((await rt.health()).spawner !== 'native') return t.skip('child_process does not act ahead: every exit is told as it comes');
    const ws = await rt.createWorkspace({ label: 'exit-after-relaunch' });
    const told = tapToChild(rt);
    const restarts = 20;
    const cmd = await ws.run({ exec: '/bin/false', label: 'loop', restart: { onFailure: true, backoffMs: 0, maxRestarts: restarts } });
    await waitFor(cmd.subscribe.bind(cmd), (s) => stateOf(s) === 'gaveUp', 'the give-up');
    const exits = told.filter((e) => e.key === cmd.commandKey && e.event.type === 'EXITED');
    assert.equal(exits.length, restarts + 1);
    for (const exit of exits.slice(0, -1)) assert.equal(exit.nextStarted, true, `run ${exit.restarts}: its exit was told before run ${exit.restarts + 1} had started`);
    assert.equal(exits.at(-1)!.nextStarted, false);
    await ws.stop({ graceMs: 0 });
  });

  test('still reaches the actor before a stop asked while the next run starts; nothing is left', async (t) => {
    const rt = await startRuntime();
    if ((await rt.health()).spawner !== 'native') return t.skip('child_process does not act ahead: every exit is told as it comes');
    const ws = await rt.createWorkspace({ label: 'exit-before-stop' });
    const told = tapToChild(rt);
    // The relaunch's spawn is held back until the stop has been sent: its exit is untold meanwhile.
    const gate = holdSpawns(rt, 1);
    // Released whatever happens: a spawn held forever would keep the runtime from ending.
    t.after(() => gate.release());
    const cmd = await ws.run({ exec: '/bin/false', label: 'loop', restart: { onFailure: true, backoffMs: 0, maxRestarts: 0 } });
    await gate.held;
    assert.equal(told.filter((e) => e.key === cmd.commandKey && e.event.type === 'EXITED').length, 0, 'the exit was told before the next run had started');
    const stopped = ws.stopCommand('loop', { graceMs: 0 });
    const stopSent = () => told.some((e) => e.key === cmd.commandKey && e.event.type === 'STOP');
    if (!stopSent()) await waitFor<void>((listener) => told.subscribe(listener), stopSent, 'the STOP sent');
    gate.release();
    await stopped;
    const order = told.filter((e) => e.key === cmd.commandKey && (e.event.type === 'EXITED' || e.event.type === 'STOP')).map((e) => e.event.type);
    assert.deepEqual(order.slice(0, 2), ['EXITED', 'STOP']);
    assert.equal(stateOf(cmd.getSnapshot()), 'stopped');
    for (const run of coreOf(rt).table.ofWorkspace(ws.id)) await waitGone(run.pid);
    await ws.stop({ graceMs: 0 });
  });
});

describe('a first run started ahead', () => {
  // Its spawn is submitted once the command's RUN has left for the worker (standing-orders.ts
  // runAhead): the actor is created while the clone runs, not after the spawner thread and the
  // new program have had the loop's CPU.
  test('the RUN leaves for the worker before the spawn is submitted (20 runs)', async (t) => {
    const rt = await startRuntime();
    if ((await rt.health()).spawner !== 'native') return t.skip('child_process does not act ahead: the actor asks first');
    const ws = await rt.createWorkspace({ label: 'run-first' });
    const core = coreOf(rt);
    const entry = core.registry.get(ws.id)!;
    const channel = (core.pool as unknown as { members: Array<{ channel: { flush(): void } }> }).members[entry.worker]!.channel;
    const queued = channel as unknown as { queue: unknown[] };
    const log: string[] = [];
    const flush = channel.flush.bind(channel);
    channel.flush = () => {
      const text = JSON.stringify(queued.queue);
      for (const label of text.match(/first-\d+/g) ?? []) log.push(`RUN sent ${label}`);
      flush();
    };
    const unwrap = wrapSpawner(rt, (order, real) => {
      log.push('spawn');
      return real.spawn(order);
    });
    for (let i = 0; i < 20; i++) {
      log.length = 0;
      const cmd = await ws.run({ exec: '/bin/true', label: `first-${i}` });
      const sent = log.indexOf(`RUN sent first-${i}`);
      assert.ok(sent >= 0, `run ${i}: ${JSON.stringify(log)}`);
      assert.ok(sent < log.indexOf('spawn'), `run ${i}: the spawn was submitted before the RUN left: ${JSON.stringify(log)}`);
      await cmd.exited;
    }
    unwrap();
    await ws.stop({ graceMs: 0 });
  });
});

interface Told {
  key: string;
  event: ChildEvent;
  restarts: number;
  /** The command's next run was in the process table as the event was sent. */
  nextStarted: boolean;
}

/** Every event the main thread sends to an actor, as it is sent; `subscribe` hears each one. */
function tapToChild(rt: Runtime): Told[] & { subscribe(listener: () => void): () => void } {
  const core = coreOf(rt);
  const listeners = new Set<() => void>();
  const told = Object.assign([] as Told[], {
    subscribe(listener: () => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  });
  const send = core.toChild.bind(core);
  core.toChild = (ws, key, event) => {
    const run = 'runId' in event ? core.table.get(event.runId) : undefined;
    const restarts = run?.restarts ?? -1;
    const nextStarted = core.table.ofWorkspace(ws.id).some((r) => r.key === key && r.restarts === restarts + 1);
    told.push({ key, event, restarts, nextStarted });
    send(ws, key, event);
    for (const listener of listeners) listener();
  };
  return told;
}

/** The spawns after the first `free` ones wait (the process itself is started) until release(). */
function holdSpawns(rt: Runtime, free: number): { held: Promise<void>; release(): void } {
  let release!: () => void;
  let heldNow!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const held = new Promise<void>((resolve) => (heldNow = resolve));
  let count = 0;
  wrapSpawner(rt, async (order, real): Promise<SpawnedProcess> => {
    const spawned = real.spawn(order);
    if (count++ < free) return spawned;
    heldNow();
    await released;
    return spawned;
  });
  return { held, release: () => release() };
}
