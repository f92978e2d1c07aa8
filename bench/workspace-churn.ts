// (q) Workspaces that come and go on a runtime with a stateDir (a daemon's life: each made, one
// job run in it, stopped): what each stopped workspace leaves in the main thread's memory, with
// log files (the default) against without them (`logFiles: false`), in the same process. Before
// s30 a stopped workspace kept its log-file pair (two LogFile objects and their map entry) for
// the runtime's life: ~2.7 KiB each, without end. The why trails of the ended commands are in
// both figures (bounded on their own: 4096 trails).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRuntime } from '../src/index.js';
import { progress, type Line } from './measure.js';

const FIRST = 1000;
const MEASURED = 2000;

/** The heap alone: what a stopped workspace kept was objects; buffers come and go by megabytes (rings, spare file blocks). */
function settledHeap(): number {
  (globalThis as { gc?: () => void }).gc?.();
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
}

async function growthPerWorkspace(logFiles: boolean): Promise<number> {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'shuma-bench-churn-'));
  const rt = await createRuntime({ workers: 1, stateDir, ...(logFiles ? {} : { logFiles: false }) });
  try {
    const churn = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const ws = await rt.createWorkspace({ label: `churn-${i}` });
        await (await ws.run({ exec: '/bin/echo', argv: [`workspace ${i} says something`], label: 'job' })).exited;
        await ws.stop();
      }
    };
    await churn(FIRST);
    const before = settledHeap();
    await churn(MEASURED);
    return (settledHeap() - before) / MEASURED;
  } finally {
    await rt.shutdown({ graceMs: 0 });
    rmSync(stateDir, { recursive: true, force: true });
  }
}

export async function workspaceChurnSection(): Promise<Line[]> {
  progress('workspaces that come and go: with log files against without');
  const withoutFiles = await growthPerWorkspace(false);
  const withFiles = await growthPerWorkspace(true);
  return [
    { heading: `(q) workspaces made, run one job and stopped, ${FIRST}–${FIRST + MEASURED}, stateDir: log files (default)  vs  logFiles: false` },
    { what: 'main-thread heap left per stopped workspace', unit: 'bytes', shuma: withFiles, baseline: withoutFiles },
  ];
}
