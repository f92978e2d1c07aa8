// A worker thread that loads the addon on its own (an N-API environment of its own, torn down when
// the worker ends: native/module.c teardown) and spawns. Used by spawn-teardown.test.ts.
//   'spawned': one spawnAsync whose promise is never seen: the loop is held from the call on,
//              until the child and what it starts run; the test then terminates the worker.
//   'ends':    a spawn, a spawnAsync and a relaunch, each to its end; then the worker ends by itself.
import { parentPort, workerData } from 'node:worker_threads';
import { loadSpawnerAddon, type SpawnArguments } from '../src/host/spawn/native-addon.js';
import { holdTheLoopUntil, markedPids } from './proc-marks.js';

export interface SpawnTeardownOrder {
  until: 'spawned' | 'ends';
  /** The spawned program's argv, file first. */
  argv: string[];
  marker: string;
}

const order = workerData as SpawnTeardownOrder;
const addon = loadSpawnerAddon();

function args(argv: string[], onExit: () => void = () => undefined): Required<SpawnArguments> {
  const none = addon.STDIO_NULL;
  // dieWithParent false: as under orphans 'adopt', nothing but the teardown itself may end the run.
  return [argv[0]!, argv, ['PATH=/usr/bin:/bin'], '/', [none, none, none], [-1, -1, -1, -1], [], onExit, false, true];
}

if (order.until === 'spawned') {
  void addon.spawnAsync(...args(order.argv));
  holdTheLoopUntil(() => markedPids(order.marker).length >= 2, 'the child and what it started');
  parentPort!.postMessage({ started: markedPids(order.marker) });
  holdTheLoopUntil(() => false, 'the worker terminated', 60_000);
} else {
  // Each to its end (their exits heard): then the loop is empty and the worker ends by itself.
  await new Promise<void>((resolve) => addon.spawn(...args(order.argv, resolve)));
  const first = await addon.spawnAsync(...args(['/bin/sleep', '0.05']));
  await new Promise<void>((resolve) => {
    if (!addon.armRelaunch!(...args(order.argv, resolve), first.pid, true, () => undefined)) resolve();
  });
}
