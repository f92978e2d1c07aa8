// Issue 5's restore figures: a runtime brought back from its stateDir with 1,000 and 10,000
// workspaces, against creating the same workspaces afresh, in the same run.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRuntime } from '../src/index.js';
import { now, progress, type Line } from './measure.js';

const BATCH = 100;

async function createMany(count: number, stateDir?: string): Promise<{ ms: number; shutdownMs: number; bytes: number }> {
  const rt = await createRuntime({ workers: 2, statsIntervalMs: 0, ...(stateDir ? { stateDir } : {}) });
  const start = now();
  for (let i = 0; i < count; i += BATCH) {
    await Promise.all(
      Array.from({ length: Math.min(BATCH, count - i) }, (_, j) => rt.createWorkspace({ label: `w${i + j}`, ttlMs: 3_600_000, env: { N: String(i + j) } })),
    );
  }
  const ms = now() - start;
  const stop = now();
  await rt.shutdown({ graceMs: 0 });
  const shutdownMs = now() - stop;
  const bytes = stateDir ? statSync(path.join(stateDir, 'shuma.snapshot')).size : 0;
  return { ms, shutdownMs, bytes };
}

export async function restoreSection(): Promise<Line[]> {
  const lines: Line[] = [{ heading: '(h) restore from stateDir  vs  creating the same workspaces afresh' }];
  for (const count of [1_000, 10_000]) {
    const dir = mkdtempSync(path.join(tmpdir(), 'shuma-bench-restore-'));
    try {
      progress(`restore: creating ${count} workspaces with a stateDir`);
      const created = await createMany(count, path.join(dir, 'state'));
      progress(`restore: restoring ${count} workspaces`);
      const start = now();
      const rt = await createRuntime({ workers: 2, statsIntervalMs: 0, stateDir: path.join(dir, 'state') });
      const restoreMs = now() - start;
      const restored = (await rt.listWorkspaces()).length;
      await rt.shutdown({ graceMs: 0 });
      if (restored !== count) throw new Error(`restored ${restored} of ${count} workspaces`);
      progress(`restore: creating ${count} workspaces without state (baseline)`);
      const fresh = await createMany(count);
      lines.push(
        { what: `${count} workspaces: restore  vs  create afresh`, unit: 'ms', shuma: restoreMs, baseline: fresh.ms },
        { what: `${count} workspaces: create with stateDir  vs  without`, unit: 'ms', shuma: created.ms, baseline: fresh.ms },
        { what: `${count} workspaces: snapshot size per workspace`, unit: 'B', shuma: created.bytes / count, baseline: Number.NaN },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return lines;
}
