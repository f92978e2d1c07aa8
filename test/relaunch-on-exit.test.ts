// A run carrying a standing order has its relaunch armed in the native spawner
// (native/relaunch.c): the spawner's own thread watches its exit and starts the next run there
// and then; the host takes that run as it hears the exit (standing-orders.ts). What the actor,
// why(), the process table and the scheduler say must be what they say without it.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import type { CommandInfo, Runtime, Workspace } from '../src/index.js';
import { coreOf } from '../src/host/runtime.js';
import type { NativeSpawner } from '../src/host/spawn/native-spawner.js';
import type { SpawnedProcess, Spawner } from '../src/host/spawn/spawner.js';
import { isAlive, pollUntil, processesMentioning, startRuntime, stateOf, waitFor, waitGone } from './helpers.js';

/** The runtime's spawner, its relaunch doors counted (the real ones still do the work). */
function countRelaunches(rt: Runtime) {
  const spawner = (coreOf(rt).placements.local as unknown as { host: { deps: { spawner: Spawner } } }).host.deps.spawner;
  const counts = { armed: 0, disarmed: 0, started: 0, taken: [] as SpawnedProcess[], beforeDisarm: undefined as ((pid: number) => void) | undefined };
  const { armRelaunch, disarmRelaunch, relaunched } = spawner;
  assert.ok(armRelaunch && disarmRelaunch && relaunched, 'the native spawner relaunches at an exit');
  // What the addon's thread started, taken by the host or not.
  const addon = (spawner as unknown as { addon: NonNullable<Required<NativeSpawner['addon']>> }).addon;
  const arm = addon.armRelaunch.bind(addon);
  addon.armRelaunch = (...args) => {
    const onRelaunched = args[12];
    args[12] = (error, child, at) => {
      if (child) counts.started++;
      onRelaunched(error, child, at);
    };
    return arm(...args);
  };
  spawner.armRelaunch = (pid, order, always) => {
    const armed = armRelaunch.call(spawner, pid, order, always);
    if (armed) counts.armed++;
    return armed;
  };
  spawner.disarmRelaunch = (pid) => {
    counts.disarmed++;
    counts.beforeDisarm?.(pid);
    disarmRelaunch.call(spawner, pid);
  };
  spawner.relaunched = (pid) => {
    const started = relaunched.call(spawner, pid);
    void started?.then((child) => counts.taken.push(child), () => undefined);
    return started;
  };
  return counts;
}

/**
 * Blocks this thread (so the loop hears nothing) until the addon's thread has reaped `pid` — under
 * its lock, as the relaunch fires — and the run it started at that exit has exec'd; its pid.
 */
function spinUntilRelaunched(pid: number, marker: string): number {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const next = existsSync(`/proc/${pid}`) ? undefined : processesMentioning(marker).find((other) => other !== pid);
    if (next !== undefined) return next;
    assert.ok(Date.now() < deadline, `the spawner's thread did not reap ${pid} and start the next run`);
  }
}

/** A workspace whose one command, `sleep 30 <marker>` restarted always, has its first run's relaunch armed. */
async function armedSleeper(rt: Runtime, counts: ReturnType<typeof countRelaunches>, marker: string, label: string, round: number) {
  const ws: Workspace = await rt.createWorkspace({ label });
  const armedBefore = counts.armed;
  const startedBefore = counts.started;
  const cmd = await ws.run({ exec: 'sleep', argv: ['30', marker], label: 'sleeper', restart: { onFailure: true, always: true, backoffMs: 0, maxRestarts: 0 } });
  await pollUntil(() => counts.armed, (armed) => armed > armedBefore, `round ${round}: the first run's relaunch armed`);
  const first: CommandInfo | undefined = (await ws.commands()).find((c) => c.label === 'sleeper' && c.alive);
  if (!first) assert.fail(`round ${round}: no first run`);
  return { ws, cmd, first, startedBefore };
}

async function nativeRuntime(t: TestContext): Promise<Runtime | null> {
  const rt = await startRuntime();
  if ((await rt.health()).spawner === 'native') return rt;
  t.skip('child_process has no thread of its own to start a run at an exit: every relaunch is the host\'s');
  return null;
}

describe('relaunches started on the spawner\'s thread', () => {
  test('a failing command: each relaunch starts at the exit, and the actor, why() and the table tell every run', async (t) => {
    const rt = await nativeRuntime(t);
    if (!rt) return;
    const counts = countRelaunches(rt);
    const ws = await rt.createWorkspace({ label: 'relaunch-on-exit' });
    const restarts = 6;
    // Long enough a run that its relaunch is armed before it exits (a run that exits first is relaunched by the host).
    const cmd = await ws.run({ exec: 'sh', argv: ['-c', 'sleep 0.1; exit 3'], label: 'failing', restart: { onFailure: true, backoffMs: 0, maxRestarts: restarts } });
    await waitFor(cmd.subscribe.bind(cmd), (s) => stateOf(s) === 'gaveUp', 'the give-up');
    assert.equal(counts.taken.length, restarts, 'every relaunch was started at its exit by the spawner');
    assert.equal(counts.started, restarts, 'and each was taken');
    for (const child of counts.taken) {
      assert.ok(child.startedOnExit, 'a run taken says when its thread saw the exit');
      assert.ok(child.startedOnExit.exitSeenAt >= child.startedOnExit.exitWokeAt, 'woken for the exit before it was reaped');
      assert.ok(child.startedOnExit.execedAt >= child.startedOnExit.exitSeenAt);
    }
    assert.equal(cmd.getSnapshot()!.context.restarts, restarts);
    const runs = (await ws.commands()).filter((c) => c.label === 'failing');
    assert.equal(runs.length, restarts + 1);
    assert.deepEqual(runs.map((run) => run.pid).sort(), [...(counts.taken.map((child) => child.pid)), runs.find((run) => run.restarts === 0)!.pid].sort());
    for (const run of runs) {
      assert.equal(run.alive, false);
      assert.equal(isAlive(run.pid), false);
    }
    const trail = (await ws.why(cmd.id)).map((entry) => entry.text);
    const told = trail.filter((text) => text.startsWith('spawned') || text === 'exited 3').map((text) => (text === 'exited 3' ? 'x' : 's')).join('');
    assert.equal(told, 'sx'.repeat(restarts + 1), JSON.stringify(trail));
    await ws.stop({ graceMs: 0 });
  });

  test('a success under onFailure starts nothing at its exit: the command ends, nothing runs after it', async (t) => {
    const rt = await nativeRuntime(t);
    if (!rt) return;
    const counts = countRelaunches(rt);
    const ws = await rt.createWorkspace({ label: 'relaunch-success' });
    const marker = `shuma-relaunch-success-${process.pid}`;
    const cmd = await ws.run({ exec: 'sh', argv: ['-c', 'sleep 0.1', marker], label: 'succeeds', restart: { onFailure: true, backoffMs: 0, maxRestarts: 5 } });
    const exit = await cmd.exited;
    assert.equal(exit.code, 0);
    assert.ok(counts.armed >= 1, 'its relaunch was armed');
    assert.equal(counts.started, 0);
    assert.equal(stateOf(cmd.getSnapshot()), 'exited');
    assert.deepEqual(processesMentioning(marker), []);
    assert.equal((await ws.commands()).filter((c) => c.label === 'succeeds').length, 1);
    await ws.stop({ graceMs: 0 });
  });

  // The stop's SIGTERM ends the run with a failure, which its order would relaunch: the workspace
  // disarms it as it begins stopping, so no run is started after the stop was asked.
  test('a workspace stopped while a run is armed (20 times): the relaunch is disarmed first, nothing starts after the stop', async (t) => {
    const rt = await nativeRuntime(t);
    if (!rt) return;
    const counts = countRelaunches(rt);
    const dir = mkdtempSync(path.join(tmpdir(), 'shuma-relaunch-stop-'));
    try {
      for (let round = 0; round < 20; round++) {
        const ws = await rt.createWorkspace({ label: `relaunch-stop-${round}` });
        const armedBefore = counts.armed;
        const starts = path.join(dir, `starts-${round}`);
        const cmd = await ws.run({ exec: 'sh', argv: ['-c', `echo start >> ${starts}; exec sleep 30`], label: 'sleeper', restart: { onFailure: true, always: true, backoffMs: 0, maxRestarts: 0 } });
        await waitFor(cmd.subscribe.bind(cmd), (s) => stateOf(s) === 'running', 'the first run');
        const disarmedBefore = counts.disarmed;
        await ws.stop({ graceMs: 5000 });
        assert.equal(counts.started, 0, `round ${round}: a run was started at the stop's exit`);
        if (counts.armed > armedBefore) assert.ok(counts.disarmed > disarmedBefore, `round ${round}: the armed relaunch was not disarmed`);
        // The first run may be stopped before its shell wrote: at most its line.
        assert.ok(['', 'start\n'].includes(existsSync(starts) ? readFileSync(starts, 'utf8') : ''), `round ${round}: a run started after the stop was asked`);
        const runs = (await ws.commands().catch(() => []));
        for (const run of runs) await waitGone(run.pid);
      }
      assert.ok(counts.armed >= 10, `relaunches were armed (${counts.armed} of 20)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // The race the disarm loses: the addon's thread has already reaped the run and started the next
  // when the host revokes the order (a stop of the command). Built, not hoped for: the run is
  // killed, and this thread spins (the loop cannot hear the exit meanwhile) until the old pid is
  // reaped — under the relaunch thread's lock, with FIRED — and the new run has exec'd; the stop is
  // asked in the same tick, so its disarm finds the relaunch fired and the host never takes it.
  test('a command stopped as its run exits, after the spawner started the next (20 rounds): that run is killed and nobody tells of it', async (t) => {
    const rt = await nativeRuntime(t);
    if (!rt) return;
    const counts = countRelaunches(rt);
    // GNU sleep adds up its operands: the extra one marks this test's runs in /proc (no sh, no fork carrying it).
    const marker = `0.0000000${process.pid}1`;
    try {
      for (let round = 0; round < 20; round++) {
        const { ws, cmd, first, startedBefore } = await armedSleeper(rt, counts, marker, `relaunch-revoked-${round}`, round);
        process.kill(first.pid, 'SIGKILL');
        const next = spinUntilRelaunched(first.pid, marker);
        // Same tick: its disarm (standing-orders.ts withdraw) comes after the relaunch fired.
        await ws.stopCommand('sleeper', { graceMs: 0 });
        assert.equal(counts.started, startedBefore + 1, `round ${round}: the spawner started the next run at the exit`);
        assert.equal(counts.taken.length, 0, `round ${round}: the host took a run after its order was revoked`);
        await pollUntil(() => processesMentioning(marker), (pids) => pids.length === 0, `round ${round}: no run left (${next} was started at the exit)`);
        const runs = (await ws.commands()).filter((c) => c.label === 'sleeper');
        assert.deepEqual(runs.map((run) => run.pid), [first.pid], `round ${round}: the table tells only the first run`);
        assert.equal(runs[0]!.alive, false);
        assert.equal(cmd.getSnapshot()!.context.restarts, 0, `round ${round}: the actor restarted`);
        assert.notEqual(stateOf(cmd.getSnapshot()), 'running');
        const trail = (await ws.why(cmd.id)).map((entry) => entry.text);
        assert.equal(trail.filter((text) => text.startsWith('spawned')).length, 1, JSON.stringify(trail));
        assert.ok(!trail.some((text) => text.includes(String(next))), JSON.stringify(trail));
        await ws.stop({ graceMs: 0 });
      }
    } finally {
      for (const pid of processesMentioning(marker)) process.kill(pid, 'SIGKILL');
    }
  });

  // The same race at a workspace stop, whose disarm comes from the actors' side a round trip later:
  // the run dies, and its relaunch fires, just before the host's disarm runs (in its door here).
  test('a workspace stopped as its run exits, after the spawner started the next (20 rounds): that run is killed and nobody tells of it', async (t) => {
    const rt = await nativeRuntime(t);
    if (!rt) return;
    const counts = countRelaunches(rt);
    const marker = `0.0000000${process.pid}2`;
    const told: string[] = [];
    const stopInspecting = rt.inspect((record) => told.push(JSON.stringify(record)));
    try {
      for (let round = 0; round < 20; round++) {
        const { ws, cmd, first, startedBefore } = await armedSleeper(rt, counts, marker, `relaunch-ws-stopped-${round}`, round);
        let next: number | undefined;
        counts.beforeDisarm = (pid) => {
          if (pid !== first.pid || next !== undefined) return;
          process.kill(pid, 'SIGKILL');
          next = spinUntilRelaunched(pid, marker);
        };
        await ws.stop({ graceMs: 0 });
        counts.beforeDisarm = undefined;
        assert.ok(next !== undefined, `round ${round}: the stop disarmed the first run's relaunch`);
        assert.equal(counts.started, startedBefore + 1, `round ${round}: the spawner started the next run at the exit`);
        assert.equal(counts.taken.length, 0, `round ${round}: the host took a run after its workspace began stopping`);
        await pollUntil(() => processesMentioning(marker), (pids) => pids.length === 0, `round ${round}: no run left (${next} was started at the exit)`);
        // The workspace is gone (commands() and why() refuse): what its actors said on the way is the record.
        assert.equal(cmd.getSnapshot()!.context.restarts, 0, `round ${round}: the actor restarted`);
        assert.ok(told.some((record) => record.includes(`"pid":${first.pid}`)), `round ${round}: the first run was told`);
        assert.deepEqual(told.filter((record) => record.includes(`"pid":${next}`)), [], `round ${round}: a run that never was told`);
        told.length = 0;
      }
    } finally {
      stopInspecting();
      counts.beforeDisarm = undefined;
      for (const pid of processesMentioning(marker)) process.kill(pid, 'SIGKILL');
    }
  });

  /** A failing `sh -c script` relaunched at its exits until it gives up: each run's output, and the workspace (to stop). */
  async function relaunchedOutputs(rt: Runtime, label: string, script: string, restarts: number) {
    const counts = countRelaunches(rt);
    const ws = await rt.createWorkspace({ label: `relaunch-${label}` });
    const cmd = await ws.run({ exec: 'sh', argv: ['-c', `sleep 0.1; ${script}; exit 1`], label, restart: { onFailure: true, backoffMs: 0, maxRestarts: restarts } });
    await waitFor(cmd.subscribe.bind(cmd), (s) => stateOf(s) === 'gaveUp', 'the give-up');
    assert.ok(counts.taken.length >= 1, 'a run was relaunched at its exit');
    const outputs: Array<{ restarts: number; out: string }> = [];
    for (const run of (await ws.commands()).filter((c) => c.label === label)) outputs.push({ restarts: run.restarts, out: (await ws.logs(run.id)).toString() });
    return { ws, outputs };
  }

  test('a relaunched run gets the kernel\'s default slice, not the spawner thread\'s', async (t) => {
    const sched = `/proc/self/task/${process.pid}/sched`;
    if (!existsSync(sched) || !/^se\.slice/m.test(readFileSync(sched, 'latin1'))) return t.skip('no se.slice in /proc/<pid>/sched here (kernel without EEVDF or SCHED_DEBUG)');
    const rt = await nativeRuntime(t);
    if (!rt) return;
    const { ws, outputs } = await relaunchedOutputs(rt, 'slice', 'grep "^se.slice" /proc/self/sched', 2);
    const own = /^se\.slice\s*:\s*(\d+)/m.exec(readFileSync(sched, 'latin1'))![1];
    for (const { restarts, out } of outputs) assert.equal(/^se\.slice\s*:\s*(\d+)/m.exec(out)?.[1], own, `run ${restarts}: ${out}`);
    await ws.stop({ graceMs: 0 });
  });

  test('a relaunched run gets the CPUs the runtime has, and every runtime thread keeps its own (the child starts on its cloning thread\'s CPU)', async (t) => {
    const cpusOf = (status: string) => /^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1];
    const own = cpusOf(readFileSync('/proc/self/status', 'latin1'));
    if (!own || !/[-,]/.test(own)) return t.skip(`the runtime may run on one CPU only (${own}): nothing is narrowed`);
    const rt = await nativeRuntime(t);
    if (!rt) return;
    const { ws, outputs } = await relaunchedOutputs(rt, 'cpus', 'grep "^Cpus_allowed_list" /proc/self/status', 4);
    for (const { restarts, out } of outputs) assert.equal(cpusOf(out), own, `run ${restarts}: ${out}`);
    const threads = readdirSync(`/proc/${process.pid}/task`).map((tid) => cpusOf(readFileSync(`/proc/${process.pid}/task/${tid}/status`, 'latin1')));
    assert.deepEqual(threads, threads.map(() => own), 'no thread of the runtime is left narrowed');
    await ws.stop({ graceMs: 0 });
  });
});
