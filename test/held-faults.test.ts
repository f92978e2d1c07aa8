// Faults that held when issue 13 tried them by hand, kept held by a test: bytes that are not
// text, and many concurrent creates under one id.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isShumaError } from '../src/index.js';
import { startRuntime } from './helpers.js';

test('invalid UTF-8 and NUL bytes in output are kept exactly, stdout and stderr alike', async () => {
  const rt = await startRuntime({ statsIntervalMs: 0 });
  const ws = await rt.createWorkspace({ label: 'bytes' });
  // Every byte value, then lone continuation bytes, a truncated sequence and an overlong NUL.
  const all = Buffer.from([...Array(256).keys(), 0x80, 0xbf, 0xe2, 0x82, 0xc0, 0x80]);
  // Octal escapes: the one form every printf(1) knows (dash's printf has no hex escapes).
  const octal = [...all].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');
  const cmd = await ws.run({ exec: '/bin/sh', argv: ['-c', `printf '${octal}'; printf '${octal}' >&2`] });
  assert.equal((await cmd.exited).status, 0);
  assert.deepEqual(await ws.logs(cmd.id, { stream: 'stdout' }), all);
  assert.deepEqual(await ws.logs(cmd.id, { stream: 'stderr' }), all);
  await ws.stop({ graceMs: 0 });
});

test('100 concurrent creates with one id make exactly one workspace; the others are refused', async () => {
  const rt = await startRuntime({ statsIntervalMs: 0 });
  const id = '01J0000000000000000000000A';
  const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => rt.createWorkspace({ label: `same-${i}` }, { id })));
  const made = results.filter((r) => r.status === 'fulfilled');
  assert.equal(made.length, 1);
  for (const r of results) {
    if (r.status === 'rejected') assert.ok(isShumaError(r.reason) && r.reason.code === 'INVALID_ARGUMENT', String(r.reason));
  }
  assert.deepEqual((await rt.listWorkspaces()).map((w) => w.id), [id]);
});
