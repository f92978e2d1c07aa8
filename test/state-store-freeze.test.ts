import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import type { SnapshotData } from '../src/host/persistence/snapshot-data.js';
import { readSnapshotFile } from '../src/host/persistence/snapshot-file.js';
import { StateStore } from '../src/host/persistence/state-store.js';

// A shutdown freezes the state before it stops anything, then amends the frozen state with the
// exits of the runs the stops ended (host/core/shutdown.ts). Writes queue behind the one in
// flight; under load (a slow fsync) a timer's write was queued when the shutdown began.

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

test('a write queued behind one in flight when the shutdown freezes: the frozen state is still written, and amended', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'shuma-state-store-'));
  dirs.push(dir);
  // The runtime's id stands for its whole state here: which state reached the file, amended or not.
  let now = 'created';
  const state = (): SnapshotData => ({ runtimeId: now, savedPipelines: {}, workspaces: [] });
  let collecting!: () => void;
  const firstWriteCollected = new Promise<void>((resolve) => (collecting = resolve));
  const store = new StateStore(dir, state, () => (collecting(), state()), pino({ level: 'silent' }));

  store.markDirty();
  void store.flush();
  // Its bytes are on their way to the disk: the next write waits for it.
  await firstWriteCollected;
  now = 'running';
  store.markDirty();
  void store.flush();

  await store.freeze();
  now = 'stopped';
  await store.amendFrozen((frozen) => {
    frozen.runtimeId += ', with the shutdown exits';
  });

  const read = await readSnapshotFile(dir);
  assert.equal(read.status, 'ok');
  assert.equal((read.data as SnapshotData).runtimeId, 'running, with the shutdown exits');
  // The queued write had nothing the freeze's own write did not carry: it was not made.
  assert.equal(store.writes, 3);
});
