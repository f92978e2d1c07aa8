// (p) A workspace that runs one-shot jobs: what each job leaves behind in the runtime's memory
// once it is over, with the default bound on finished commands (`keepFinished`, 1000) against no
// bound (the runtime before s29, which kept every finished command, its runs' rings and trails).
// Same process, one runtime after the other, `/bin/echo` one at a time; the growth is measured
// between job 1000 and job 3000, past the bound, after a full collection.
import { createRuntime } from '../src/index.js';
import { progress, type Line } from './measure.js';

const FIRST = 1000;
const MEASURED = 2000;

function settledBytes(): number {
  (globalThis as { gc?: () => void }).gc?.();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external + usage.arrayBuffers;
}

async function growthPerJob(keepFinished: number): Promise<{ bytesPerJob: number; listed: number }> {
  const rt = await createRuntime({ workers: 1, keepFinished });
  try {
    const ws = await rt.createWorkspace({ label: 'one-shot-jobs' });
    const jobs = async (n: number) => {
      for (let i = 0; i < n; i++) await (await ws.run({ exec: '/bin/echo', argv: [`job ${i} says something`] })).exited;
    };
    await jobs(FIRST);
    const before = settledBytes();
    await jobs(MEASURED);
    const after = settledBytes();
    return { bytesPerJob: (after - before) / MEASURED, listed: (await ws.commands()).length };
  } finally {
    await rt.shutdown({ graceMs: 0 });
  }
}

export async function oneShotJobsSection(): Promise<Line[]> {
  progress('one-shot jobs: keepFinished 1000 against no bound');
  const bounded = await growthPerJob(1000);
  const unbounded = await growthPerJob(Number.MAX_SAFE_INTEGER);
  return [
    { heading: `(p) one-shot jobs in one workspace, jobs ${FIRST}–${FIRST + MEASURED}: keepFinished 1000 (default)  vs  no bound (before s29)` },
    { what: 'main-thread heap + buffers left per job', unit: 'bytes', shuma: bounded.bytesPerJob, baseline: unbounded.bytesPerJob },
    { what: 'runs listed by commands() after the jobs', unit: 'runs', shuma: bounded.listed, baseline: unbounded.listed },
  ];
}
