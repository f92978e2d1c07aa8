// The relaunch thread at its environment's teardown (native/relaunch.c relaunch_close_all): a run
// it started at an exit and never told the loop of is known to nobody else — not the process
// table, not the 'exit' hook, not a snapshot — so the teardown kills it, its process group too
// (a command leads its own session: what it started is in that group). A run it told, and a
// relaunch still only armed, are the runtime's: left to it. Here the addon is loaded in a worker
// thread, an environment of its own, and the worker is terminated while it holds its loop.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, test, type TestContext } from 'node:test';
import { Worker } from 'node:worker_threads';
import { loadSpawnerAddon } from '../src/host/spawn/native-addon.js';
import type { TeardownOrder } from './relaunch-teardown-worker.js';
import { isAlive, pollUntil, processesMentioning, waitGone } from './helpers.js';

const WORKER = new URL('./relaunch-teardown-worker.js', import.meta.url);
const started = new Set<number>();

after(() => {
  for (const pid of started) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone, or no group of its own
    }
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

function addonProblem(): string | false {
  try {
    return loadSpawnerAddon().armRelaunch ? false : 'this addon has no relaunch thread';
  } catch (error) {
    return `the native spawner does not load here: ${(error as Error).message}`;
  }
}

interface Told {
  first: number;
  started?: number[];
  told?: number | null;
  error?: string | null;
}

/** Runs the worker until its first message, noting every pid it names for the final clean-up. */
async function runWorker(order: TeardownOrder): Promise<{ worker: Worker; told: Told }> {
  const worker = new Worker(WORKER, { workerData: order });
  const told = await new Promise<Told>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the worker exited (${code}) before it said anything`)));
  });
  for (const pid of [told.first, ...(told.started ?? []), ...(told.told ? [told.told] : [])]) started.add(pid);
  return { worker, told };
}

/** A marker GNU sleep adds to its time (its operands are summed): it names this test's processes in /proc. */
function marker(k: number): string {
  return `0.0000000${process.pid}${k}`;
}

function skipped(t: TestContext): boolean {
  const problem = addonProblem();
  if (problem) t.skip(problem);
  return problem !== false;
}

describe('the relaunch thread at its environment\'s teardown', () => {
  test('a run started at an exit and never told: killed with its process group, nothing of it left', async (t) => {
    if (skipped(t)) return;
    const mark = marker(1);
    const { worker, told } = await runWorker({ first: ['/bin/sleep', '300'], next: ['/bin/sh', '-c', `/bin/sleep 300 ${mark} & wait`], until: 'fired', marker: mark });
    assert.equal(told.started!.length, 2, 'the relaunch (sh) and what it started (sleep) run');
    await worker.terminate();
    for (const pid of told.started!) await waitGone(pid).catch((error: unknown) => assert.fail(`${String(error)}: ${readFileSync(`/proc/${pid}/cmdline`, 'latin1')}`));
    assert.deepEqual(processesMentioning(mark), []);
  });

  test('a run started at an exit and told to the loop is the runtime\'s: the teardown leaves it running', async (t) => {
    if (skipped(t)) return;
    const mark = marker(2);
    const { worker, told } = await runWorker({ first: ['/bin/sleep', '300'], next: ['/bin/sleep', '300', mark], until: 'told', marker: mark });
    assert.equal(told.error, null);
    assert.ok(told.told, 'the relaunch was told');
    await worker.terminate();
    assert.ok(isAlive(told.told), 'a run the runtime knows is its own to stop (orphans \'adopt\' keeps it)');
    process.kill(told.told, 'SIGKILL');
    await waitGone(told.told);
  });

  test('a relaunch only armed starts nothing once its environment is gone, when its run then exits', async (t) => {
    if (skipped(t)) return;
    const mark = marker(3);
    const { worker, told } = await runWorker({ first: ['/bin/sleep', '300'], next: ['/bin/sleep', '300', mark], until: 'armed', marker: mark });
    await worker.terminate();
    assert.ok(isAlive(told.first), 'the armed run is the runtime\'s: left running');
    process.kill(told.first, 'SIGKILL');
    // Nobody reaps it any more (its watch closed with the environment): it stays a zombie, which is the exit.
    await waitGone(told.first);
    // The thread was joined at the teardown: had it been left running, it would have started the relaunch at this exit.
    await pollUntil(() => processesMentioning(mark), (pids) => pids.length === 0, 'nothing started at the exit');
    assert.deepEqual(processesMentioning(mark), []);
  });
});
