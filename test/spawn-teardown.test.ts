// The spawn path at its environment's teardown (a worker's end). A spawnAsync whose child exists
// but whose promise nobody will see — settled while JavaScript can no longer run (the teardown
// runs the loop once more before the cleanup hook), or left unsettled when the spawner thread
// stops (native/spawn-thread.c spawn_thread_stop) — is known to nobody: it is killed with its
// process group, as the relaunch thread's untold runs are (relaunch-teardown.test.ts). And an
// addon loaded by a worker alone stays loaded when that worker ends: its teardown leaves close
// callbacks and thread destructors of its own to run after Node would have unloaded it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { loadSpawnerAddon } from '../src/host/spawn/native-addon.js';
import { killedAtTheEnd, processesMentioning, waitGone } from './helpers.js';
import { holdTheLoopUntil, markedPids } from './proc-marks.js';
import type { SpawnTeardownOrder } from './spawn-teardown-worker.js';

const WORKER = new URL('./spawn-teardown-worker.js', import.meta.url);
const started = killedAtTheEnd();

function skipped(t: TestContext): boolean {
  try {
    loadSpawnerAddon();
    return false;
  } catch (error) {
    t.skip(`the native spawner does not load here: ${(error as Error).message}`);
    return true;
  }
}

describe('the spawn path at its environment\'s teardown', () => {
  test('a spawn its worker never heard of as the worker ends: killed with its process group, nothing of it left', async (t) => {
    if (skipped(t)) return;
    // A marker GNU sleep adds to its time (its operands are summed): it names this test's processes.
    const mark = `0.0000000${process.pid}1`;
    const order: SpawnTeardownOrder = { until: 'spawned', argv: ['/bin/sh', '-c', `/bin/sleep 300 ${mark} & wait`], marker: mark };
    const worker = new Worker(WORKER, { workerData: order });
    const { started: pids } = await new Promise<{ started: number[] }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    for (const pid of pids) started.add(pid);
    assert.ok(pids.length >= 2, 'the child (sh) and what it started (sleep) run');
    await worker.terminate();
    for (const pid of pids) await waitGone(pid, 5_000);
    assert.deepEqual(processesMentioning(mark), []);
  });

  // The same drop at the process's last moment (stopSpawning, called by the runtime's 'exit' hook):
  // a spawn done on the spawner thread and not yet settled on the loop as that thread stops.
  test('stopSpawning with a spawn done and not yet settled: it never settles, and nothing of it is left', async (t) => {
    if (skipped(t)) return;
    const addon = loadSpawnerAddon();
    const mark = `0.0000000${process.pid}2`;
    const none = addon.STDIO_NULL;
    let settled = false;
    const argv = ['/bin/sh', '-c', `/bin/sleep 300 ${mark} & wait`];
    addon.spawnAsync('/bin/sh', argv, ['PATH=/usr/bin:/bin'], '/', [none, none, none], [-1, -1, -1, -1], [], () => undefined, false, true).then(
      () => (settled = true),
      () => (settled = true),
    );
    // The loop held until the child and what it starts run: the spawn is done, its settling waits for the loop.
    holdTheLoopUntil(() => markedPids(mark).length >= 2, 'the child and what it started');
    const pids = markedPids(mark);
    for (const pid of pids) started.add(pid);
    addon.stopSpawning!();
    for (const pid of pids) await waitGone(pid, 5_000);
    assert.deepEqual(processesMentioning(mark), []);
    assert.equal(settled, false, 'nobody is told of a spawn the stop dropped');
  });

  test('the addon loaded by a worker alone: the worker ends and the process lives on', async (t) => {
    if (skipped(t)) return;
    // A process of its own: this one has the addon loaded already, so nothing would unload it.
    const order: SpawnTeardownOrder = { until: 'ends', argv: ['/bin/true'], marker: '' };
    const code = `new (require('node:worker_threads').Worker)(${JSON.stringify(fileURLToPath(WORKER))}, { workerData: ${JSON.stringify(order)} })
      .on('error', (e) => { console.error(e); process.exitCode = 2; })
      .on('exit', (c) => console.log('worker ended', c));`;
    const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    const [status, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
    assert.deepEqual({ status, signal, out }, { status: 0, signal: null, out: 'worker ended 0\n' });
  });
});
