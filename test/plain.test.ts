import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toPlain } from '../src/actors/plain.js';

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
