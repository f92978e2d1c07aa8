// A process that exits before anyone listens for its exit: child_process tells 'exit' and
// 'close' only to the listeners it has at that moment. A supervisor must never lose an exit: the
// node spawner listens from the spawn on and tells late listeners what they missed, as the
// native spawner does (spawner.ts, onExit's contract).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';
import { NodeSpawner } from '../src/host/spawn/node-spawner.js';
import type { SpawnOrder } from '../src/host/spawn/spawner.js';

function order(file: string, args: string[] = []): SpawnOrder {
  return { file, argv0: file, args, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, cwd: '/' };
}

/** Resolves once the loop has run every callback due now (timers, I/O, then this). */
const turn = () => new Promise((resolve) => setImmediate(resolve));

/** Until the kernel has no process `pid` any more: child_process reaped it, and told 'exit' then. */
async function reaped(pid: number): Promise<void> {
  for (let delay = 1; existsSync(`/proc/${pid}`); delay = Math.min(delay * 2, 20)) {
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

describe('an exit before its listener, under child_process', () => {
  test('listeners added after the exit and the end of output hear both, once', async () => {
    const spawned = await new NodeSpawner().spawn(order('/bin/sh', ['-c', 'exit 3']));
    const closed = Promise.all([once(spawned.stdout!.resume(), 'close'), once(spawned.stderr!.resume(), 'close')]);
    await reaped(spawned.pid);
    await closed;
    await turn();
    const heard: Array<[number | null, string | null]> = [];
    let ended = 0;
    spawned.onExit((code, signal) => heard.push([code, signal]));
    spawned.onOutputEnd(() => ended++);
    assert.deepEqual(heard, [], 'never told during the call that listens');
    await turn();
    assert.deepEqual(heard, [[3, null]]);
    assert.equal(ended, 1);
  });

  test("a pipeline's nodes, half exiting at once and half killed, listened to only once all have ended: each exit heard once", async () => {
    const spawner = new NodeSpawner();
    const nodes = [];
    for (let i = 0; i < 10; i++) {
      nodes.push(await spawner.spawn(order('/bin/true')));
      nodes.push(await spawner.spawn(order('/bin/sleep', ['60'])));
    }
    for (const node of nodes) {
      node.stdout!.resume();
      node.stderr!.resume();
    }
    const early: Array<[number | null, string | null]> = [];
    nodes[1]!.onExit((code, signal) => early.push([code, signal])); // before its exit: told once too
    nodes.forEach((node, i) => i % 2 === 1 && process.kill(node.pid, 'SIGKILL'));
    for (const node of nodes) await reaped(node.pid);
    await turn();
    const heard = new Map<number, Array<[number | null, string | null]>>();
    for (const node of nodes) node.onExit((code, signal) => heard.set(node.pid, [...(heard.get(node.pid) ?? []), [code, signal]]));
    await turn();
    assert.deepEqual(early, [[null, 'SIGKILL']]);
    nodes.forEach((node, i) => {
      const wanted = i % 2 === 0 ? [0, null] : [null, 'SIGKILL'];
      assert.deepEqual(heard.get(node.pid), [wanted], `node ${i} (pid ${node.pid})`);
    });
  });
});
