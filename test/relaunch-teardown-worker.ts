// A worker thread that loads the addon on its own (an N-API environment of its own, torn down
// when the worker ends: native/module.c teardown → relaunch_close_all) and arms one relaunch.
// Used by relaunch-teardown.test.ts; it does only what workerData says, then holds its loop.
import { parentPort, workerData } from 'node:worker_threads';
import { loadSpawnerAddon, type SpawnArguments } from '../src/host/spawn/native-addon.js';
import { holdTheLoopUntil, markedPids } from './proc-marks.js';

export interface TeardownOrder {
  /** The first run's argv (file first) and the relaunch's. */
  first: string[];
  next: string[];
  /** 'armed': only armed; 'fired': the first run killed, the next started on the addon's thread and never told (the loop held); 'told': started and told. */
  until: 'armed' | 'fired' | 'told';
  marker: string;
}

const order = workerData as TeardownOrder;
const addon = loadSpawnerAddon();
const held = new Int32Array(new SharedArrayBuffer(4));

function args(argv: string[]): Required<SpawnArguments> {
  const none = addon.STDIO_NULL;
  // dieWithParent false: as under orphans 'adopt', nothing but the teardown itself may end the run.
  return [argv[0]!, argv, ['PATH=/usr/bin:/bin'], '/', [none, none, none], [-1, -1, -1, -1], [], () => undefined, false, true];
}

/** Blocks this thread until the worker is terminated: nothing the addon queued for the loop is delivered. */
function holdTheLoop(): never {
  for (;;) Atomics.wait(held, 0, 0, 50);
}

const first = await addon.spawnAsync(...args(order.first));
let told: number | null = null;
const armed = addon.armRelaunch!(...args(order.next), first.pid, true, (error, child) => {
  told = child?.pid ?? null;
  // Said once the callback has returned: a worker terminated inside it has not taken the run.
  setImmediate(() => parentPort!.postMessage({ first: first.pid, told, error: error ? String(error) : null }));
});
if (!armed) throw new Error('the relaunch was not armed');
if (order.until === 'armed') {
  parentPort!.postMessage({ first: first.pid });
} else {
  process.kill(first.pid, 'SIGKILL');
  if (order.until === 'fired') {
    let started: number[] = [];
    // The first run is killed; its relaunch's processes (the program and what it starts) show up.
    holdTheLoopUntil(() => (started = markedPids(order.marker)).length >= 2, 'the relaunch did not start');
    parentPort!.postMessage({ first: first.pid, started });
    holdTheLoop();
  }
}
