// Issue 6's figure: what an inspection observer costs. Restart latency and host ↔ worker
// message throughput with no observer and with one attached, side by side in one run.
import { createRuntime } from '../src/index.js';
import type { ActorSnapshot, InspectionRecord } from '../src/index.js';
import { now, progress, quantile, type Line } from './measure.js';

const RESTARTS = 200;
const ROUNDS = 3;

function stateOf(snapshot: ActorSnapshot): string {
  return typeof snapshot.value === 'string' ? snapshot.value : (Object.keys(snapshot.value)[0] ?? '');
}

/** Median exit → next run running, over RESTARTS relaunches of /bin/false with no backoff. */
async function restartGapMs(observe: boolean): Promise<{ gap: number; records: number; perSecond: number }> {
  let records = 0;
  const rt = await createRuntime({ workers: 1, statsIntervalMs: 0, ...(observe ? { inspect: (_r: InspectionRecord) => void records++ } : {}) });
  try {
    const ws = await rt.createWorkspace({ label: 'inspection-bench' });
    const exitedAt: number[] = [];
    const startedAt: number[] = [];
    const cmd = await ws.run({ exec: '/bin/false', restart: { onFailure: true, backoffMs: 0, maxBackoffMs: 0, maxRestarts: RESTARTS } });
    const start = now();
    await new Promise<void>((resolve) => {
      const unsubscribe = cmd.subscribe((snapshot) => {
        const at = now();
        const run = Number(snapshot.context.restarts);
        const state = stateOf(snapshot);
        if (state === 'running') startedAt[run] ??= at;
        if (state === 'restarting') exitedAt[run - 1] ??= at;
        if (state === 'gaveUp') {
          unsubscribe();
          resolve();
        }
      });
    });
    const totalMs = now() - start;
    const gaps = startedAt.slice(1).map((t, i) => t - exitedAt[i]!).filter(Number.isFinite);
    return { gap: quantile(gaps, 0.5), records, perSecond: (records * 1000) / totalMs };
  } finally {
    await rt.shutdown({ graceMs: 0 });
  }
}

export async function inspectionSection(): Promise<Line[]> {
  progress('inspection overhead');
  const without: number[] = [];
  const withObserver: number[] = [];
  let recordsPerSecond = 0;
  for (let round = 0; round < ROUNDS; round++) {
    without.push((await restartGapMs(false)).gap);
    const observed = await restartGapMs(true);
    withObserver.push(observed.gap);
    recordsPerSecond = Math.max(recordsPerSecond, observed.perSecond);
  }
  return [
    { heading: '(i) inspection: restart latency with an observer attached  vs  without' },
    { what: 'exit → next run running, median of rounds', unit: 'ms', shuma: quantile(withObserver, 0.5), baseline: quantile(without, 0.5) },
    { what: 'inspection records delivered while restarting', unit: 'records/s', shuma: recordsPerSecond, baseline: Number.NaN },
  ];
}
