import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toPersistable, toPlain } from '../src/actors/plain.js';
import { onlyKeys, withKey } from '../src/machines/keyed-records.js';

// The worker's copy of a snapshot's parts for the wire (actors/plain.ts): a value frozen through
// is copied once per thread (every plain new workspace holds the same group); anything that can
// still change is copied at every call, so a snapshot never shows a stale part.

test('a value frozen through is copied once: every snapshot holding it gets the same copy', () => {
  const group = Object.freeze({ strategy: 'one_for_one', failures: Object.freeze([]), labels: Object.freeze({}) });
  const first = toPlain({ id: 'a', group });
  const second = toPlain({ id: 'b', group });
  assert.deepEqual(first, { id: 'a', group: { strategy: 'one_for_one', failures: [], labels: {} } });
  assert.equal((first as { group: unknown }).group, (second as { group: unknown }).group);
});

test('a frozen value holding something that can change is copied afresh each time', () => {
  const inner = { n: 1 };
  const shallow = Object.freeze({ inner });
  assert.deepEqual(toPlain(shallow), { inner: { n: 1 } });
  inner.n = 2;
  assert.deepEqual(toPlain(shallow), { inner: { n: 2 } });
});

test('a frozen value is cut at the same depth wherever it sits', () => {
  let deep: object = Object.freeze({ leaf: true });
  for (let i = 0; i < 9; i++) deep = Object.freeze({ next: deep });
  const shallowCopy = JSON.stringify(toPlain(deep));
  const nested = JSON.stringify(toPlain({ wrap: { again: deep } }));
  assert.match(shallowCopy, /\[…\]/);
  // Two levels deeper, it is cut two levels sooner: not the copy made at the shallower depth.
  assert.equal(nested.split('next').length, shallowCopy.split('next').length - 2);
});

// What the worker sends is encoded at the end of the same turn, and an actor's context is never
// changed in place: a part plain already is sent as it is, not copied at every snapshot.

/** The copy the worker made before it shared what needs no change (s28), kept here as the reference. */
function copied(value: unknown, depth = 0, persistable = false): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return persistable ? null : value.toString();
  if (typeof value !== 'object') return null;
  if (!persistable && depth >= 8) return '[…]';
  if (Array.isArray(value)) return value.map((item) => copied(item, depth + 1, persistable));
  if (value instanceof Error) return { name: value.name, message: value.message };
  const record = value as Record<string, unknown>;
  if (!persistable && typeof record.send === 'function' && typeof record.sessionId === 'string') return { actorRef: typeof record.id === 'string' ? record.id : null };
  // A record without a prototype (keyed by id: machines/keyed-records.ts) stays one: the wire and the file hold the same fields.
  const out: Record<string, unknown> = Object.getPrototypeOf(record) === null ? Object.create(null) : {};
  for (const [key, item] of Object.entries(record)) if (typeof item !== 'function' && item !== undefined) out[key] = copied(item, depth + 1, persistable);
  return out;
}

const sameAsCopy = (actual: unknown, expected: unknown, what: string) => {
  assert.deepEqual(actual, expected, what);
  // Key order too: it is the order of the bytes on the wire and in the snapshot file.
  assert.equal(JSON.stringify(actual), JSON.stringify(expected), what);
};

test('what the worker sends is what a copy would be, with functions, undefined, refs, errors, odd numbers and depth', () => {
  const ref = { id: 'cmd-1', sessionId: 'x:1', send: () => undefined };
  let deep: Record<string, unknown> = { leaf: 1 };
  for (let i = 0; i < 9; i++) deep = { next: deep };
  const holes = [1, , 3]; // eslint-disable-line no-sparse-arrays
  const values: unknown[] = [
    { a: 1, b: 'two', c: [1, 2, { d: null }], e: { f: true } },
    { a: 1, skipped: undefined, b: 2 },
    { a: 1, fn: () => 1, b: { c: undefined } },
    { ref, list: [ref, 1] },
    { error: new Error('boom'), n: Number.NaN, inf: Number.POSITIVE_INFINITY, big: 12n },
    [1, undefined, 'x', Number.NaN],
    holes,
    deep,
    { date: new Date(5), map: new Map([[1, 2]]) },
    Object.assign(Object.create(null) as object, { a: 1 }),
    { nested: { deeper: { list: [{ x: 1 }, { x: 2, y: undefined }] } }, last: 'kept' },
  ];
  values.forEach((value, i) => {
    sameAsCopy(toPlain(value), copied(value), `toPlain of value ${i}`);
    sameAsCopy(toPersistable(value), copied(value, 0, true), `toPersistable of value ${i}`);
  });
  assert.equal((toPlain(holes) as unknown[]).length, 3);
  assert.ok(!(1 in (toPlain(holes) as unknown[])), 'a hole stays a hole');
});

test('a part that is plain already is sent as it is; only the path to what must change is copied', () => {
  const policy = { onFailure: false, backoffMs: 200 };
  const context = { key: 'k', policy, lastExit: { code: 0, signal: null }, runs: 3 };
  assert.equal(toPlain(context), context);
  assert.equal(toPersistable(context), context);
  const withUndefined = { ...context, readyDeadline: undefined };
  const plain = toPlain(withUndefined) as typeof context;
  assert.notEqual(plain, withUndefined);
  assert.equal(plain.policy, policy, 'the parts that need no change are the same objects');
  assert.ok(!('readyDeadline' in plain));
  const persistable = toPersistable({ snapshot: { status: 'active', output: undefined, context } }) as { snapshot: { context: unknown } };
  assert.equal(persistable.snapshot.context, context);
  // Records keyed by command id have no prototype (machines/keyed-records.ts): plain as they are.
  const labels = withKey(withKey(undefined, 'k1', 'a'), 'k2', 'b');
  const group = { order: ['k1', 'k2'], labels };
  assert.equal(toPlain(group), group);
  assert.equal(toPersistable(group), group);
  assert.deepEqual(Object.keys(labels), ['k1', 'k2']);
  assert.deepEqual(Object.keys(onlyKeys(labels, ['k2', 'k3'])), ['k2']);
});
