import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { BatchedChannel } from '../src/protocol/channel.js';
import { streamDecoder, streamEncoder } from '../src/protocol/codec.js';
import { MAX_SHAPE_NODES, MAX_SHAPES, STRING_SLOTS } from '../src/protocol/wire-format.js';

// The worker wire's own encoder and decoder (wire-format.ts): what one ordered stream says once
// (a record's keys, a repeated id) it then refers to; both ends keep the same tables, filled as
// the bytes travel, and a new stream starts with empty ones.

function stream() {
  const encode = streamEncoder();
  const decode = streamDecoder();
  return { encode, decode, roundTrip: (value: unknown) => decode(encode(value)) };
}

const ulid = (n: number) => `01JC0ZB4NQ8F3X8YV6W${String(n).padStart(7, '0')}`;

test('every kind of value the wire carries comes back equal', () => {
  const { roundTrip } = stream();
  const values: unknown[] = [
    null, true, false, 0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1,
    -1, -32, -33, -128, -129, -32_768, -32_769, -(2 ** 31), -(2 ** 31) - 1, 1.5, -0.25, 1_730_000_000_123, Number.MAX_VALUE,
    '', 'a', 'abc', 'abcd', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(64), 'x'.repeat(65), 'x'.repeat(300), 'y'.repeat(70_000),
    'é', 'ünïcödé ids', '日本語のテキスト', '😀 emoji 😀', 'a\u0000b', '😀'.repeat(40),
    [], [1, 'two', [3]], Array.from({ length: 20 }, (_, i) => i), Array.from({ length: 70_000 }, (_, i) => i % 7),
    {}, { a: 1 }, { nested: { deeper: { list: [{ x: 1 }, { x: 2, y: null }] } } },
    { 1: 'one', 0: 'zero', b: 'bee' }, { env: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`K${i}`, `v${i}`])) },
    JSON.parse('{"__proto__": {"polluted": true}, "x": 1}'),
    new Date(1_730_000_000_000), new Uint8Array([1, 2, 3]),
  ];
  for (let round = 0; round < 12; round++) {
    for (const value of values) assert.deepEqual(roundTrip(value), value, `round ${round}: ${JSON.stringify(value)?.slice(0, 60)}`);
  }
  const withUndefined = roundTrip({ a: undefined, b: [undefined] }) as { a: unknown; b: unknown[] };
  assert.ok('a' in withUndefined);
  assert.equal(withUndefined.a, undefined);
  assert.deepEqual(withUndefined.b, [undefined]);
  const proto = roundTrip(JSON.parse('{"__proto__": {"polluted": true}}')) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(proto), Object.prototype, 'a key from the wire never sets a prototype');
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('an id repeated in a stream is sent once: later batches refer to it and come back equal', () => {
  const { encode, decode } = stream();
  const message = (n: number) => ({ type: 'childEvent', wsId: ulid(1), key: ulid(2), event: { type: 'EXITED', runId: ulid(3), code: n, label: 'a label of some length' } });
  const batch = (base: number) => Array.from({ length: 100 }, (_, i) => message(base + i));
  const first = encode(batch(0));
  const second = encode(batch(100));
  assert.deepEqual(decode(first), batch(0));
  assert.deepEqual(decode(second), batch(100));
  // Written out, the four strings of each message take 26 × 3 + 22 bytes; referred to, 3 each.
  assert.ok(second.length < 100 * 30, `a batch of known ids takes ${second.length} bytes`);
  assert.ok(first.length > second.length, 'the first batch carries the strings and the shapes whole');
});

test('more strings than the ring holds: slots are reused in step on both ends', () => {
  const { encode, decode } = stream();
  const count = STRING_SLOTS + 500;
  for (let turn = 0; turn < 3; turn++) {
    // Old ids come back after being pushed out of the ring; recent ones while still in it.
    const batch = Array.from({ length: count }, (_, i) => ({ id: ulid((i * 7 + turn * 1_000) % (count + 300)), recent: ulid(i % 50) }));
    assert.deepEqual(decode(encode(batch)), batch);
  }
});

test('more shapes than the table holds (maps keyed by names): the table starts again on both ends, nothing is lost', () => {
  const { encode, decode } = stream();
  // Keyed by ULIDs they would be maps at once (wire-encoder.ts, looksLikeId): names make a shape each.
  const keyed = (n: number) => ({ children: { [`node-${n}`]: { n }, [`node-${n + 1}`]: { n: n + 1 } }, type: 'persisted' });
  for (let turn = 0; turn < 4; turn++) {
    const batch = Array.from({ length: Math.max(MAX_SHAPES, MAX_SHAPE_NODES / 2) }, (_, i) => keyed(turn * 100_000 + i));
    batch.push({ children: {}, type: 'persisted' }, keyed(1) as never);
    assert.deepEqual(decode(encode(batch)), batch);
  }
  assert.deepEqual(decode(encode([{ type: 'after', a: 1 }])), [{ type: 'after', a: 1 }]);
});

test('a map keyed by ids is written as a map: it never takes a shape of its own', () => {
  const { encode, decode } = stream();
  const first = encode({ labels: { [ulid(1)]: 'a', [ulid(2)]: 'b' } });
  // Its keys are interned like any string; no shape is defined for them (a record would list them once more).
  const shapeDefinitions = (bytes: Uint8Array) => bytes.filter((b, i) => b === 0xc8 && bytes[i + 3] === 0x04).length;
  assert.equal(shapeDefinitions(first), 1, 'one shape: the outer object');
  const second = encode({ labels: { [ulid(2)]: 'b', [ulid(3)]: 'c' } });
  assert.equal(shapeDefinitions(second), 0);
  assert.deepEqual(decode(first), { labels: { [ulid(1)]: 'a', [ulid(2)]: 'b' } });
  assert.deepEqual(decode(second), { labels: { [ulid(2)]: 'b', [ulid(3)]: 'c' } });
});

test('a new stream starts with empty tables: it never refers to what an older stream said', () => {
  const old = stream();
  const message = { type: 'childEvent', wsId: ulid(9), key: ulid(10) };
  old.decode(old.encode([message]));
  const later = old.encode([message]);
  // The old stream's later batch refers to what only its own decoder was told.
  assert.throws(() => streamDecoder()(later), /never defined: the stream lost its order/);
  // A worker re-hosted after a crash gets a new channel, so a new encoder: its first batch says it all.
  assert.deepEqual(streamDecoder()(streamEncoder()([message])), [message]);
});

test('a channel opened after another (a re-hosted worker) delivers the same ids whole', async () => {
  const message = { type: 'childEvent', wsId: ulid(20), key: ulid(21), event: { type: 'EXITED', runId: ulid(22) } };
  for (let generation = 0; generation < 3; generation++) {
    const { port1, port2 } = new MessageChannel();
    const received: unknown[] = [];
    let arrived: () => void = () => undefined;
    const all = new Promise<void>((resolve) => (arrived = resolve));
    const sender = new BatchedChannel<unknown, unknown>(port1, () => undefined);
    const receiver = new BatchedChannel<unknown, unknown>(port2, (m) => {
      received.push(m);
      if (received.length === 4) arrived();
    });
    for (let turn = 0; turn < 2; turn++) {
      sender.send(message);
      sender.send({ ...message, key: ulid(30 + generation) });
      sender.flush();
    }
    await all;
    assert.deepEqual(received, [message, { ...message, key: ulid(30 + generation) }, message, { ...message, key: ulid(30 + generation) }]);
    sender.close();
    receiver.close();
    port1.close();
    port2.close();
  }
});

test('records that share their first key but not all their keys come back as written, batch after batch', () => {
  const { encode, decode } = stream();
  // The encoder tries the shape last met with the same first key before its key tree.
  const records = [{ a: 1 }, { a: 2, b: 3 }, { a: 4, b: 5, c: 6 }, { a: 7, c: 8 }, { a: 9, b: 10 }, { a: 11 }, { b: 12, a: 13 }, { a: 14, b: 15, c: 16, d: 17 }];
  for (let round = 0; round < 3; round++) {
    const batch = records.map((r) => ({ ...r, nested: { ...r } }));
    assert.deepEqual(decode(encode(batch)), batch, `round ${round}`);
    for (const record of records) assert.deepEqual(decode(encode(record)), record, `round ${round}, alone: ${JSON.stringify(record)}`);
  }
});
