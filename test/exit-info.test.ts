// How an exit is told: as a shell says it, and never as a success when its status was lost.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toExitInfo } from '../src/host/processes/exit-info.js';

test('an exit code is the status; a signal is 128 + its number', () => {
  assert.deepEqual(toExitInfo(3, null), { code: 3, signal: null, status: 3 });
  assert.deepEqual(toExitInfo(0, null), { code: 0, signal: null, status: 0 });
  assert.deepEqual(toExitInfo(null, 'SIGKILL'), { code: null, signal: 'SIGKILL', status: 137 });
  assert.deepEqual(toExitInfo(null, 'SIGPIPE'), { code: null, signal: 'SIGPIPE', status: 141 });
});

test('neither a code nor a signal (the child was reaped by someone else): status -1, not 0', () => {
  assert.deepEqual(toExitInfo(null, null), { code: null, signal: null, status: -1 });
});
