import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { ANSWER_PART, BatchedChannel } from '../src/protocol/channel.js';

// The worker wire: batches of msgpack records whose shapes travel once per ordered stream
// (codec.ts, `sequential`). What is sent arrives equal, in order, whatever the shapes; an encode
// that fails loses its batch only, never what follows.

function closeAll(...handles: Array<{ close(): void }>): void {
  for (const handle of handles) handle.close();
}

function pair() {
  const { port1, port2 } = new MessageChannel();
  const received: unknown[] = [];
  let waiting: { count: number; done: () => void } | null = null;
  const sender = new BatchedChannel<unknown, unknown>(port1, () => undefined);
  const receiver = new BatchedChannel<unknown, unknown>(port2, (message) => {
    received.push(message);
    if (waiting && received.length >= waiting.count) waiting.done();
  });
  const until = (count: number) =>
    new Promise<void>((resolve) => {
      if (received.length >= count) resolve();
      else waiting = { count, done: resolve };
    });
  const close = () => {
    sender.close();
    receiver.close();
    port1.close();
    port2.close();
  };
  return { sender, received, until, close };
}

test('batches of many shapes, over many turns, arrive equal and in order', async () => {
  const { sender, received, until, close } = pair();
  const sent: unknown[] = [];
  for (let turn = 0; turn < 40; turn++) {
    for (let i = 0; i < 25; i++) {
      const n = turn * 25 + i;
      // Shapes come back (a record reused) and keep coming (more than a decoder's table holds).
      const message = n % 3 === 0
        ? { type: 'childEvent', wsId: `W${n % 7}`, key: `K${n}`, event: { type: 'EXITED', at: n, runId: `R${n}`, code: n % 2, signal: null, status: n % 2 } }
        : { type: 'snapshot', [`field${n % 150}`]: n, nested: { list: [n, `${n}`, { deep: n % 5 === 0 ? null : true }] } };
      sent.push(message);
      sender.send(message);
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  await until(sent.length);
  assert.deepEqual(received, sent);
  close();
});

test('an encode that fails loses its own batch; what is sent after it arrives whole', async () => {
  const { sender, received, until, close } = pair();
  sender.send({ shape: 'a', n: 1 });
  sender.flush();
  // A value msgpack cannot hold, in a new shape: the encoder may learn the shape before it fails.
  sender.send({ other: 'b', big: 2n ** 80n });
  assert.throws(() => sender.flush());
  const after = [{ other: 'b', big: 3 }, { shape: 'a', n: 2 }, { third: true }];
  for (const message of after) sender.send(message);
  sender.flush();
  await until(4);
  assert.deepEqual(received, [{ shape: 'a', n: 1 }, ...after]);
  close();
});

/** A sender and a receiver whose handler throws on the messages `fails` picks out. */
function faultyPair(fails: (message: { n: number }) => boolean, onReceiveError?: (error: unknown, message: { n: number }) => void) {
  const { port1, port2 } = new MessageChannel();
  const received: number[] = [];
  const sender = new BatchedChannel<{ n: number }, unknown>(port1, () => undefined);
  const receiver = new BatchedChannel<unknown, { n: number }>(
    port2,
    (message) => {
      if (fails(message)) throw new Error(`handler failed on ${message.n}`);
      received.push(message.n);
    },
    onReceiveError,
  );
  const close = () => {
    sender.close();
    receiver.close();
    port1.close();
    port2.close();
  };
  return { sender, receiver, received, close };
}

test('a handler that throws loses nothing of its batch: the rest is delivered, the throw reported with its message', async () => {
  const reported: Array<{ error: unknown; n: number }> = [];
  let told: () => void = () => undefined;
  const allTold = new Promise<void>((resolve) => (told = resolve));
  const { sender, received, close } = faultyPair(
    (message) => message.n === 2 || message.n === 5,
    (error, message) => {
      reported.push({ error, n: message.n });
      if (reported.length === 2) told();
    },
  );
  for (let n = 1; n <= 6; n++) sender.send({ n });
  sender.flush();
  await allTold;
  assert.deepEqual(received, [1, 3, 4, 6]);
  assert.deepEqual(reported.map((r) => r.n), [2, 5]);
  assert.match(String(reported[0]!.error), /handler failed on 2/);
  close();
});

test('without an error handler, a throw still surfaces (after the rest of its batch), and later batches arrive', () => {
  const { sender, receiver, received, close } = faultyPair((message) => message.n === 1);
  for (const n of [1, 2, 3]) sender.send({ n });
  sender.flush();
  // drainNow hands the batch out synchronously: the throw reaches the caller, as a port listener's would.
  assert.throws(() => receiver.drainNow(), /handler failed on 1/);
  assert.deepEqual(received, [2, 3]);
  sender.send({ n: 4 });
  sender.flush();
  assert.equal(receiver.drainNow(), true);
  assert.deepEqual(received, [2, 3, 4]);
  close();
});

test('a long batch is answered in parts as it is handled, not in one batch after the last message', async () => {
  const { port1, port2 } = new MessageChannel();
  const answers: number[] = [];
  let answered: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (answered = resolve));
  const count = ANSWER_PART * 2 + 10;
  const asker = new BatchedChannel<number, number>(port1, (n) => {
    answers.push(n);
    if (answers.length === count) answered();
  });
  const answerer: BatchedChannel<number, number> = new BatchedChannel<number, number>(port2, (n) => answerer.send(n));
  let posts = 0;
  answerer.afterPost = () => posts++;
  try {
    for (let n = 0; n < count; n++) asker.send(n);
    await all;
    assert.deepEqual(answers, Array.from({ length: count }, (_, n) => n));
    // Two full parts while the batch was handled, the rest at the end of its turn.
    assert.equal(posts, 3);
  } finally {
    closeAll(asker, answerer, port1, port2);
  }
});

test('a batch whose messages each queue many answers is answered in parts of ANSWER_PART answers, not after its last message', async () => {
  const { port1, port2 } = new MessageChannel();
  const perMessage = ANSWER_PART / 4;
  const messages = 10;
  let received = 0;
  let answered: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (answered = resolve));
  const asker = new BatchedChannel<number, number>(port1, () => {
    if (++received === messages * perMessage) answered();
  });
  const answerer: BatchedChannel<number, number> = new BatchedChannel<number, number>(port2, (n) => {
    for (let i = 0; i < perMessage; i++) answerer.send(n);
  });
  let posts = 0;
  answerer.afterPost = () => posts++;
  try {
    for (let n = 0; n < messages; n++) asker.send(n);
    await all;
    // 4 messages fill a part: two parts while the batch was handled, the rest at the end of its turn.
    assert.equal(posts, 3);
  } finally {
    closeAll(asker, answerer, port1, port2);
  }
});

test('what beforeFlush sends travels in the batch being flushed, and asks for no flush of its own', async () => {
  const { sender, received, until, close } = pair();
  let calls = 0;
  let posted = 0;
  sender.afterPost = () => posted++;
  sender.beforeFlush = () => {
    calls++;
    // The worker's persisted parts: sent as the batch leaves, the latest state of what changed.
    if (calls === 1) sender.send({ late: calls });
  };
  sender.send({ first: 1 });
  await until(2);
  // One more turn for a flush the late send might have asked for.
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(received, [{ first: 1 }, { late: 1 }]);
  assert.equal(posted, 1, 'one batch');
  assert.equal(calls, 1, 'beforeFlush ran once: no empty flush after the batch');
  // A beforeFlush that throws does not stop the channel: the next send is flushed.
  sender.beforeFlush = () => {
    throw new Error('boom');
  };
  assert.throws(() => sender.flush(), /boom/);
  sender.beforeFlush = undefined;
  sender.send({ after: 1 });
  await until(3);
  assert.deepEqual(received.at(-1), { after: 1 });
  close();
});
