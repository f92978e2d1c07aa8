import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel, Worker } from 'node:worker_threads';
import { BatchedChannel } from '../src/protocol/channel.js';
import type { FromWorker, ToWorker } from '../src/protocol/worker-messages.js';
import type { ActorWorkerTask } from '../src/protocol/worker-task.js';

// The actor thread itself (src/actors/actor-worker.ts), run as the pool runs it: a real worker
// thread, its real channel. A failure in one actor's message is an event, never a crash of the
// thread and of every actor co-hosted on it.

/** The actor task in a thread of its own; `next` resolves with the first message that matches, or rejects if the thread dies. */
function actorThread() {
  const data = new MessageChannel();
  const admin = new MessageChannel();
  const task: ActorWorkerTask = {
    port: data.port2,
    admin: admin.port2,
    workerIndex: 0,
    manualClockStart: null,
    posted: new Int32Array(new SharedArrayBuffer(4)),
    logThreshold: new Int32Array(new SharedArrayBuffer(4)),
  };
  const url = new URL('../src/actors/actor-worker.js', import.meta.url).href;
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads'); import(workerData.url).then((m) => m.default(workerData.task));`,
    { eval: true, workerData: { url, task }, transferList: [data.port2, admin.port2] },
  );
  const received: FromWorker[] = [];
  const waiting: Array<{ match: (m: FromWorker) => boolean; resolve: (m: FromWorker) => void; reject: (e: Error) => void }> = [];
  let died: Error | null = null;
  const die = (error: Error) => {
    died = error;
    for (const w of waiting.splice(0)) w.reject(error);
  };
  worker.on('error', (error) => die(new Error(`the actor thread crashed: ${error.message}`)));
  worker.on('exit', (code) => die(new Error(`the actor thread exited (${code})`)));
  const channel = new BatchedChannel<ToWorker, FromWorker>(data.port1, (message) => {
    received.push(message);
    for (const w of [...waiting]) {
      if (!w.match(message)) continue;
      waiting.splice(waiting.indexOf(w), 1);
      w.resolve(message);
    }
  });
  const next = (match: (m: FromWorker) => boolean) =>
    new Promise<FromWorker>((resolve, reject) => {
      const seen = received.find(match);
      if (seen) resolve(seen);
      else if (died) reject(died);
      else waiting.push({ match, resolve, reject });
    });
  const send = (message: ToWorker) => {
    channel.send(message);
    channel.flush();
  };
  const close = async () => {
    worker.removeAllListeners('exit');
    channel.close();
    data.port1.close();
    admin.port1.close();
    await worker.terminate();
  };
  return { send, next, received, close };
}

const running = (wsId: string) => (m: FromWorker) => m.type === 'snapshot' && m.wsId === wsId && m.snapshot.value === 'running';

test('a message whose handling throws is reported as its workspace failing; the thread and its other actors go on', async () => {
  const thread = actorThread();
  try {
    for (const wsId of ['A', 'B']) thread.send({ type: 'createWorkspace', wsId, label: wsId, ttlMs: null, at: Date.now() });
    await thread.next(running('A'));
    await thread.next(running('B'));
    // Malformed (no event): reading its type throws in the handler, as a bug would.
    thread.send({ type: 'workspaceEvent', wsId: 'A', event: null } as unknown as ToWorker);
    const failure = await thread.next((m) => m.type === 'actorError');
    assert.equal(failure.type === 'actorError' && failure.wsId, 'A');
    assert.match(failure.type === 'actorError' ? failure.error.message : '', /handling 'workspaceEvent' failed: .*null/);

    // The thread still answers.
    thread.send({ type: 'clock', now: 0, seq: 7 });
    await thread.next((m) => m.type === 'clockAck' && m.seq === 7);

    // Its neighbour still serves.
    thread.send({ type: 'workspaceEvent', wsId: 'B', event: { type: 'STOP', at: Date.now(), graceMs: 0, reason: 'requested' } });
    thread.send({ type: 'workspaceEvent', wsId: 'B', event: { type: 'GROUPS_EMPTY', at: Date.now(), reaped: 0 } });
    await thread.next((m) => m.type === 'snapshot' && m.wsId === 'B' && m.snapshot.status === 'done');
  } finally {
    await thread.close();
  }
});

test('one event for many workspaces is told to each as if alone; one that fails does not keep it from the others', async () => {
  const thread = actorThread();
  try {
    const ids = ['A', 'B', 'C', 'D'];
    for (const wsId of ids) thread.send({ type: 'createWorkspace', wsId, label: wsId, ttlMs: null, at: Date.now() });
    for (const wsId of ids) await thread.next(running(wsId));
    // B fails at this event (FAULT makes its actor throw); A, C and D still stop, and 'gone' is no actor at all.
    thread.send({ type: 'workspaceEvent', wsId: 'B', event: { type: 'FAULT', message: 'drill' } });
    await thread.next((m) => m.type === 'actorError' && m.wsId === 'B');
    const at = Date.now();
    thread.send({ type: 'workspacesEvent', wsIds: ['A', 'gone', 'B', 'C', 'D'], event: { type: 'STOP', at, graceMs: 0, reason: 'shutdown', groupsEmpty: true } });
    for (const wsId of ['A', 'C', 'D']) {
      const done = await thread.next((m) => m.type === 'snapshot' && m.wsId === wsId && m.snapshot.status === 'done');
      assert.equal(done.type === 'snapshot' && done.snapshot.value, 'stopped');
      assert.deepEqual(done.type === 'snapshot' && { reason: done.snapshot.context.stopReason, stoppedAt: done.snapshot.context.stoppedAt }, { reason: 'shutdown', stoppedAt: at });
    }
  } finally {
    await thread.close();
  }
});
