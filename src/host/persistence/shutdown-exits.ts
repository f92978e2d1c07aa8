// The runs a shutdown ends: alive when the state was frozen, so the frozen history lacks them.
// Their exits go into it before the last write, so that the next runtime lists them (ps,
// describe, why) and `logs -f` of a command whose only run this was finds its end; a pipeline's
// node runs too, as its last attempt (kept whole, as finished pipelines' are).
import type { ProcessTable, RunEntry } from '../processes/process-table.js';
import type { Registry } from '../registry/registry.js';
import { persistedRun, RUNS_KEPT, type PersistedRun } from './finished.js';
import type { SnapshotData } from './snapshot-data.js';

/**
 * The runs alive now, commands' and pipeline nodes' (taken before the freeze: one that ends
 * meanwhile is in its history already).
 */
export function aliveRuns(registry: Registry, table: ProcessTable): RunEntry[] {
  const alive: RunEntry[] = [];
  for (const ws of registry.all()) {
    for (const run of table.ofWorkspace(ws.id)) if (run.alive) alive.push(run);
  }
  return alive;
}

/** Adds to `data`'s histories the exits of `runs` that ended, newest RUNS_KEPT per command kept. */
export function addShutdownExits(data: SnapshotData, runs: readonly RunEntry[]): void {
  for (const [index, record] of data.workspaces.entries()) {
    const history = record.history;
    if (!history) continue;
    const known = new Set(history.runs.map((run) => run.runId));
    const ended = runs.filter((run) => run.wsId === record.id && run.exit !== null && !known.has(run.id)).map(persistedRun);
    if (ended.length === 0) continue;
    const all = [...history.runs, ...ended].sort((a, b) => (a.runId < b.runId ? -1 : 1));
    const kept: PersistedRun[] = [];
    const perKey = new Map<string, number>();
    // Newest first, so that each command keeps its newest runs; then back in the order they ran.
    for (const run of all.reverse()) {
      if (run.pipelineId !== null) {
        kept.push(run);
        continue;
      }
      const count = (perKey.get(run.key) ?? 0) + 1;
      perKey.set(run.key, count);
      if (count <= RUNS_KEPT) kept.push(run);
    }
    // A new record, not this one changed: the snapshot encoder keeps the bytes of the one written.
    data.workspaces[index] = { ...record, history: { ...history, runs: kept.reverse() } };
  }
}
