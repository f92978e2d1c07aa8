// The disk under the stateDir fills up (a small tmpfs, mounted for the test: it runs as root).
// A snapshot write then fails: said once in rt.warnings, the file on disk stays the last
// complete one, nothing half-written is left, and writing resumes once there is room.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { createRuntime } from '../src/index.js';
import { readSnapshotFile } from '../src/host/persistence/snapshot-file.js';
import type { SnapshotData } from '../src/host/persistence/snapshot-data.js';
import { pollUntil } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const mounts: string[] = [];
after(() => {
  for (const dir of mounts) {
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The labels the snapshot on disk holds; [] before the first write. A file that does not decode is a failure. */
async function labelsOnDisk(stateDir: string): Promise<string[]> {
  const read = await readSnapshotFile(stateDir);
  if (read.status === 'missing') return [];
  // Thrown here, it would be an unhandled rejection inside pollUntil: a value the test asserts on.
  if (read.status !== 'ok') return [`<${read.status}>`];
  return (read.data as SnapshotData).workspaces.map((w) => w.spec.label).sort();
}

test('a full disk: one warning, the last complete snapshot kept, no temp file left, writes resume once there is room', { skip: isRoot ? false : 'mounting a tmpfs needs root' }, async () => {
  const mount = mkdtempSync('/tmp/shuma-full-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', mount]);
  mounts.push(mount);
  const stateDir = path.join(mount, 'state');
  const rt = await createRuntime({ stateDir, workers: 1, statsIntervalMs: 0 });
  try {
    await rt.createWorkspace({ label: 'before' });
    await pollUntil(() => labelsOnDisk(stateDir), (labels) => labels.includes('before'), 'the first snapshot');

    const filler = path.join(mount, 'filler');
    const chunk = Buffer.alloc(4096);
    for (;;) {
      try {
        appendFileSync(filler, chunk);
      } catch (error) {
        assert.equal((error as NodeJS.ErrnoException).code, 'ENOSPC');
        break;
      }
    }
    await rt.createWorkspace({ label: 'during' });
    await rt.createWorkspace({ label: 'during-too' });
    await pollUntil(() => rt.warnings, (w) => w.some((m) => /could not be written/.test(m)), 'the warning');
    assert.equal(rt.warnings.filter((m) => /could not be written/.test(m)).length, 1, 'one warning for the episode');
    assert.deepEqual(await labelsOnDisk(stateDir), ['before'], 'the last complete snapshot');

    rmSync(filler);
    await rt.createWorkspace({ label: 'after' });
    await pollUntil(() => labelsOnDisk(stateDir), (labels) => labels.length === 4, 'writing resumed', 20);
    assert.deepEqual(await labelsOnDisk(stateDir), ['after', 'before', 'during', 'during-too']);
  } finally {
    await rt.shutdown({ graceMs: 0 });
  }
  assert.deepEqual(readdirSync(stateDir), ['shuma.snapshot'], 'no temp file, no lock');
});
