// Issue 4's figures: the cost of one full quota sample of a workspace with 100 and 1,000 live
// processes, per process, against a bare readFileSync loop over the same /proc files in the
// same run; and the quota actor's share of one core when it samples those 1,000 at 1 Hz.
import { readFileSync } from 'node:fs';
import { coreOf } from '../src/host/runtime.js';
import type { Runtime } from '../src/index.js';
import { now, progress, quantile, type Line } from './measure.js';

const SAMPLES = 40;

async function startSleepers(rt: Runtime, count: number) {
  const ws = await rt.createWorkspace({ label: `sleepers-${count}` });
  const pids: number[] = [];
  // 16 at a time: spawning is the slow part of this set-up, not what is measured.
  for (let i = 0; i < count; i += 16) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(16, count - i) }, () => ws.run({ exec: 'sleep', argv: ['1000'] })),
    );
    pids.push(...batch.map((cmd) => cmd.pid));
  }
  return { ws, pids };
}

function bareRead(pids: readonly number[]): void {
  for (const pid of pids) readFileSync(`/proc/${pid}/stat`, 'latin1');
}

export async function samplingSection(rt: Runtime): Promise<Line[]> {
  const lines: Line[] = [{ heading: '(f) quota sampling from /proc: one full sample of a workspace  vs  readFileSync of each /proc/<pid>/stat' }];
  const core = coreOf(rt);
  for (const count of [100, 1000]) {
    progress(`sampling: starting ${count} sleepers`);
    const { ws, pids } = await startSleepers(rt, count);
    const entry = core.workspaceEntry(ws.id);
    const shuma: number[] = [];
    const bare: number[] = [];
    // Alternate the two, so that load from elsewhere hits both alike.
    for (let i = 0; i < SAMPLES; i++) {
      let start = now();
      const stats = core.quota.sample(entry);
      shuma.push(((now() - start) * 1000) / count);
      if (stats.processes !== count) throw new Error(`sampled ${stats.processes} processes, expected ${count}`);
      start = now();
      bareRead(pids);
      bare.push(((now() - start) * 1000) / count);
    }
    // Every 10th sample also scans all of /proc: the mean, not the median, carries that cost.
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    lines.push(
      { what: `one sample, ${count} processes, median per process`, unit: 'µs', shuma: quantile(shuma, 0.5), baseline: quantile(bare, 0.5) },
      { what: `one sample, ${count} processes, mean per process`, unit: 'µs', shuma: mean(shuma), baseline: mean(bare) },
    );
    if (count === 1000) {
      // At 1 Hz, a sample's duration over the second it recurs in is the share of one core.
      const share = (mean(shuma) * count) / 1_000_000;
      lines.push({ what: 'quota actor at 1 Hz, 1,000 processes: share of one core', unit: '%', shuma: share * 100, baseline: Number.NaN });
    }
    await ws.stop({ graceMs: 0 });
  }
  return lines;
}
