// What ended, kept in the snapshot so that a restarted runtime still lists it: finished commands
// and pipelines (with their last exits and results) and their `why` trails, and the last exits
// of the commands that go on. Bounded, so that a workspace running one-shot jobs for months does
// not grow its snapshot without end: the newest are kept, the oldest dropped.
import type { ActorSnapshot } from '../../protocol/actor-records.js';
import type { PipelineSpec } from '../../protocol/pipeline-spec.js';
import type { CommandSpec, ResolvedRestartPolicy } from '../../protocol/specs.js';
import type { ProcessTable, RunEntry } from '../processes/process-table.js';
import type { WorkspaceEntry } from '../registry/registry.js';

/** Finished commands kept per workspace, and finished pipelines kept per workspace. */
export const FINISHED_KEPT = 50;
/** Ended runs kept per command (its last exits). */
export const RUNS_KEPT = 5;
/** Entries kept of each kept trail (the in-memory trail keeps 64). */
export const TRAIL_KEPT = 32;

export interface PersistedRun {
  runId: string;
  key: string;
  label: string;
  pid: number;
  restarts: number;
  startedAt: number;
  pipelineId: string | null;
  exit: { code: number | null; signal: NodeJS.Signals | null; status: number };
  reason: RunEntry['reason'];
  node?: string;
}

/** An ended actor's last snapshot (its value and context: the state and exits `ps` shows). */
export interface EndedSnapshot {
  value: ActorSnapshot['value'];
  context: ActorSnapshot['context'];
}

export interface PersistedHistory {
  commands: Array<{ key: string; label: string; spec: CommandSpec; policy: ResolvedRestartPolicy; snapshot: EndedSnapshot }>;
  pipelines: Array<{ id: string; spec: PipelineSpec; snapshot: EndedSnapshot }>;
  /** Ended runs: of the commands above and of the live ones (RUNS_KEPT each), and of the pipelines' last attempts. */
  runs: PersistedRun[];
  /** The trails of the finished commands and pipelines, by command key or pipeline id. */
  why: Record<string, Array<{ at: number; text: string }>>;
}

export function persistedRun(run: RunEntry): PersistedRun {
  return {
    runId: run.id,
    key: run.key,
    label: run.label,
    pid: run.pid,
    restarts: run.restarts,
    startedAt: run.startedAt,
    pipelineId: run.pipelineId ?? null,
    exit: { code: run.exit!.code, signal: run.exit!.signal, status: run.exit!.status },
    reason: run.reason,
    ...(run.node !== undefined ? { node: run.node } : {}),
  };
}

/** The ended part of a workspace, newest kept. `live` are the keys its actor still holds. */
export function historyOf(
  ws: WorkspaceEntry,
  table: ProcessTable,
  live: ReadonlySet<string>,
  trail: (key: string) => Array<{ at: number; text: string }>,
): PersistedHistory {
  const finished = [...ws.commands.values()].filter((c) => !live.has(c.key) && c.snapshot !== null && c.snapshot.status !== 'active').slice(-FINISHED_KEPT);
  const pipelines = [...ws.pipelines.values()].filter((p) => !live.has(p.id) && p.done.settled && p.snapshot !== null).slice(-FINISHED_KEPT);
  const kept = new Set(finished.map((c) => c.key));
  // One pass over the table (written at every snapshot: never commands × runs).
  const endedByKey = new Map<string, RunEntry[]>();
  for (const run of table.ofWorkspace(ws.id)) {
    if (run.alive || run.exit === null || run.pipelineId !== undefined || !(live.has(run.key) || kept.has(run.key))) continue;
    let list = endedByKey.get(run.key);
    if (!list) endedByKey.set(run.key, (list = []));
    list.push(run);
    if (list.length > RUNS_KEPT) list.shift();
  }
  const runs: PersistedRun[] = [...endedByKey.values()].flat().map(persistedRun);
  for (const p of pipelines) runs.push(...p.currentRuns.filter((run) => !run.alive && run.exit !== null).map(persistedRun));
  runs.sort((a, b) => (a.runId < b.runId ? -1 : 1));
  const why: PersistedHistory['why'] = {};
  for (const key of [...finished.map((c) => c.key), ...pipelines.map((p) => p.id)]) {
    const entries = trail(key);
    if (entries.length > 0) why[key] = entries.slice(-TRAIL_KEPT);
  }
  return {
    commands: finished.map((c) => ({ key: c.key, label: c.label, spec: c.spec, policy: c.policy, snapshot: { value: c.snapshot!.value, context: c.snapshot!.context } })),
    pipelines: pipelines.map((p) => ({ id: p.id, spec: p.spec, snapshot: { value: p.snapshot!.value, context: p.snapshot!.context } })),
    runs,
    why,
  };
}
