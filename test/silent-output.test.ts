// A command's output stream is made when the output first has something to say (native
// spawner: native/output-watch.c, spawn/captured-output.ts): an output that ends without a byte
// costs no net.Socket, and nothing said later, on either stream, is lost.
import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import type { Readable } from 'node:stream';
import { before, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { Workspace } from '../src/index.js';
import { ADDON_PATH, loadSpawnerAddon } from '../src/host/spawn/native-addon.js';
import { NativeSpawner } from '../src/host/spawn/native-spawner.js';
import { isAlive, pollUntil, startRuntime, waitGone } from './helpers.js';

function addonProblem(): string | false {
  try {
    if (!loadSpawnerAddon().outputWatch) return 'the addon was built without outputWatch';
    return false;
  } catch (error) {
    return `the native spawner does not load here: ${(error as Error).message}`;
  }
}

const skip = addonProblem();
const net = createRequire(import.meta.url)('node:net') as typeof import('node:net');

/** Counts the net.Sockets made while it is installed (the ESM bindings of node:net follow it). */
function countSockets(): { made: () => number; restore: () => void } {
  const Original = net.Socket;
  let made = 0;
  net.Socket = class CountedSocket extends Original {
    constructor(...args: ConstructorParameters<typeof Original>) {
      super(...args);
      made++;
    }
  } as typeof Original;
  syncBuiltinESMExports();
  return {
    made: () => made,
    restore: () => {
      net.Socket = Original;
      syncBuiltinESMExports();
    },
  };
}

async function logOf(ws: Workspace, id: string, stream: 'stdout' | 'stderr'): Promise<string> {
  return (await ws.logs(id, { stream })).toString();
}

describe('a command output read only once it says something', { skip }, () => {
  let ws: Workspace;
  /** Set when the runtime runs on child_process (SHUMA_SPAWNER=node): its streams are Node's own. */
  let notNative: string | false = false;
  before(async () => {
    const rt = await startRuntime();
    const spawner = (await rt.health()).spawner;
    notNative = spawner === 'native' ? false : `the runtime spawns with ${spawner}: its outputs are child_process's streams`;
    ws = await rt.createWorkspace({ label: 'silent-output' });
  });

  test('an output that ends without a byte makes no stream; one that speaks makes one, for itself only', async (t) => {
    if (notNative) return t.skip(notNative);
    const sockets = countSockets();
    try {
      for (let i = 0; i < 5; i++) {
        const cmd = await ws.run({ exec: '/bin/true' });
        assert.equal((await cmd.exited).status, 0);
      }
      assert.equal(sockets.made(), 0, 'five silent runs: no socket for their outputs');
      const talker = await ws.run({ exec: 'sh', argv: ['-c', 'echo said'] });
      await talker.exited;
      assert.equal(sockets.made(), 1, 'one socket: stdout spoke, stderr did not');
      assert.equal(await logOf(ws, talker.id, 'stdout'), 'said\n');
      assert.equal(await logOf(ws, talker.id, 'stderr'), '');
    } finally {
      sockets.restore();
    }
  });

  // These hold on child_process too: the same promises, whatever reads the pipes.
  test('output after a silence, on both streams, is all in the log once exited resolves', async () => {
    const cmd = await ws.run({ exec: 'sh', argv: ['-c', 'sleep 0.2; echo late; echo late-err >&2; sleep 0.1; echo later'] });
    const exit = await cmd.exited;
    assert.equal(exit.status, 0);
    assert.equal(await logOf(ws, cmd.id, 'stdout'), 'late\nlater\n');
    assert.equal(await logOf(ws, cmd.id, 'stderr'), 'late-err\n');
  });

  test('a descendant that keeps a silent output open and writes after the exit: its words reach the log', async () => {
    const cmd = await ws.run({ exec: 'sh', argv: ['-c', '(sleep 0.4; echo from-descendant) & exit 0'] });
    assert.equal((await cmd.exited).status, 0);
    await pollUntil(() => logOf(ws, cmd.id, 'stdout'), (text) => text === 'from-descendant\n', 'the descendant\'s line in the log');
  });

  test('a flood that begins after a silence is counted whole', async () => {
    const bytes = 3 * 1024 * 1024;
    const cmd = await ws.run({ exec: 'sh', argv: ['-c', `sleep 0.1; head -c ${bytes} /dev/zero`] });
    await cmd.exited;
    const listed = (await ws.commands()).find((c) => c.id === cmd.id);
    assert.equal(listed?.logBytes, bytes);
  });
});

describe('the native spawner\'s output streams, asked for late', { skip }, () => {
  const ENV = { PATH: '/usr/bin:/bin' };
  const spawner = skip ? null : new NativeSpawner();

  function collect(stream: Readable | null): Promise<string> {
    if (!stream) return Promise.resolve('');
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(Buffer.from(chunk)));
    return new Promise((resolve) => stream.once('close', () => resolve(Buffer.concat(chunks).toString())));
  }

  test('asked for after the output ended empty, a stream ends at once and says nothing', async () => {
    const child = await spawner!.spawn({ file: '/bin/true', argv0: 'true', args: [], env: ENV, cwd: '/' });
    await new Promise<void>((resolve) => child.onOutputEnd(resolve));
    assert.deepEqual(await Promise.all([collect(child.stdout), collect(child.stderr)]), ['', '']);
  });

  test('asked for after the output spoke, the stream reads what waits in the pipe, then its end', async () => {
    const child = await spawner!.spawn({ file: '/bin/sh', argv0: 'sh', args: ['-c', 'echo waiting; echo too >&2'], env: ENV, cwd: '/' });
    await new Promise<void>((resolve) => child.onExit(() => resolve()));
    assert.deepEqual(await Promise.all([collect(child.stdout), collect(child.stderr)]), ['waiting\n', 'too\n']);
    await new Promise<void>((resolve) => child.onOutputEnd(resolve));
  });

  test('a child still running when its stream is asked for: the watch hands over and every byte arrives', async () => {
    const child = await spawner!.spawn({ file: '/bin/sh', argv0: 'sh', args: ['-c', 'sleep 0.1; echo one; sleep 0.1; echo two'], env: ENV, cwd: '/' });
    assert.equal(await collect(child.stdout), 'one\ntwo\n');
    await new Promise<void>((resolve) => child.onOutputEnd(resolve));
    if (isAlive(child.pid)) await waitGone(child.pid);
  });
});

describe('output watches at an environment\'s end', { skip }, () => {
  test('a worker thread that ends with an output still watched takes its watch with it; the process goes on', async () => {
    // The addon loaded in a worker (safe, though the runtime does not): its environment's
    // cleanup closes the watches it still holds, with no callback into the gone environment.
    // A pipe whose write end stays open stands for a child's silent output.
    const worker = new Worker(
      `
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = require(workerData.addon);
      const [readFd, writeFd] = addon.pipe();
      addon.outputWatch(readFd, () => parentPort.postMessage('told'));
      parentPort.postMessage([readFd, writeFd]);
      `,
      { eval: true, workerData: { addon: ADDON_PATH } },
    );
    const [readFd, writeFd] = await new Promise<[number, number]>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    let told = false;
    worker.on('message', () => (told = true));
    await worker.terminate();
    // Its news after the end: the write end closes (every writer gone) with nobody to tell.
    closeSync(writeFd);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(told, false, 'no callback from a watch whose environment ended');
    closeSync(readFd);
  });
});
