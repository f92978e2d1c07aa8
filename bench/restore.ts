// Issue 5's restore figures: a runtime brought back from its stateDir with 1,000 and 10,000
// workspaces, against creating the same workspaces afresh, in the same run. Both sides count
// from `createRuntime()` until the workspaces are there: a restore starts its runtime too (its
// threads, its lock), and that fixed cost (0.4–1.5 s on two loaded cores) is most of a
// 1,000-workspace restore; counted on one side only, it made restore look slower than it is.
// The creation without that start is shown too, as the stateDir's cost on creating: measured in
// the rounds, beside the creation without one. (Until s32 it was the section's first creation, in
// a process whose code was still cold, against later warm ones: it read 1.39–1.46× where warm
// creations differ by 1.0–1.1×.)
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRuntime } from '../src/index.js';
import { now, progress, quantile, type Line } from './measure.js';

const BATCH = 100;

interface Created {
  /** From createRuntime() until every workspace is created. */
  upMs: number;
  /** Creating the workspaces alone, in a runtime already started. */
  ms: number;
  bytes: number;
}

async function createMany(count: number, stateDir?: string): Promise<Created> {
  const begin = now();
  const rt = await createRuntime({ workers: 2, statsIntervalMs: 0, ...(stateDir ? { stateDir } : {}) });
  const start = now();
  for (let i = 0; i < count; i += BATCH) {
    await Promise.all(
      Array.from({ length: Math.min(BATCH, count - i) }, (_, j) => rt.createWorkspace({ label: `w${i + j}`, ttlMs: 3_600_000, env: { N: String(i + j) } })),
    );
  }
  const end = now();
  await rt.shutdown({ graceMs: 0 });
  const bytes = stateDir ? statSync(path.join(stateDir, 'shuma.snapshot')).size : 0;
  return { upMs: end - begin, ms: end - start, bytes };
}

/** From createRuntime() on a stateDir until its workspaces are back. */
async function restore(stateDir: string, count: number): Promise<number> {
  const start = now();
  const rt = await createRuntime({ workers: 2, statsIntervalMs: 0, stateDir });
  const ms = now() - start;
  const restored = (await rt.listWorkspaces()).length;
  await rt.shutdown({ graceMs: 0 });
  if (restored !== count) throw new Error(`restored ${restored} of ${count} workspaces`);
  return ms;
}

const median = (values: number[]): number => quantile(values, 0.5);

export async function restoreSection(): Promise<Line[]> {
  const lines: Line[] = [{ heading: '(h) restore from stateDir  vs  creating the same workspaces afresh (both from createRuntime)' }];
  // Rounds alternate restore and creation, so that a change in the machine's load hits both.
  for (const [count, rounds] of [[1_000, 3], [10_000, 2]] as const) {
    const dir = mkdtempSync(path.join(tmpdir(), 'shuma-bench-restore-'));
    try {
      const stateDir = path.join(dir, 'state');
      progress(`restore: creating ${count} workspaces with a stateDir`);
      const created = await createMany(count, stateDir);
      const restores: number[] = [];
      const fresh: Created[] = [];
      const persisted: Created[] = [];
      for (let round = 0; round < rounds; round++) {
        progress(`restore: restoring ${count} workspaces (round ${round + 1} of ${rounds})`);
        // Each restore's shutdown writes the same state back: the next round restores it again.
        restores.push(await restore(stateDir, count));
        progress(`restore: creating ${count} workspaces without state (baseline)`);
        fresh.push(await createMany(count));
        progress(`restore: creating ${count} workspaces with a new stateDir`);
        const another = path.join(dir, `state-${round}`);
        persisted.push(await createMany(count, another));
        rmSync(another, { recursive: true, force: true });
      }
      lines.push(
        { what: `${count} workspaces: restore  vs  create afresh`, unit: 'ms', shuma: median(restores), baseline: median(fresh.map((f) => f.upMs)) },
        { what: `${count} workspaces: create with stateDir  vs  without (runtime already started)`, unit: 'ms', shuma: median(persisted.map((p) => p.ms)), baseline: median(fresh.map((f) => f.ms)) },
        { what: `${count} workspaces: snapshot size per workspace`, unit: 'B', shuma: created.bytes / count, baseline: Number.NaN },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return lines;
}
