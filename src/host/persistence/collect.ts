import { readProcStat } from '../processes/proc.js';
import type { ProcessTable } from '../processes/process-table.js';
import type { Registry, WorkspaceEntry } from '../registry/registry.js';
import type { PipelineSpec } from '../../protocol/pipeline-spec.js';
import type { PersistedProcess, PersistedWorkspace, SnapshotData } from './snapshot-data.js';
import { historyOf, persistedRun, type PersistedRun } from './finished.js';
import { knownRunIds, unheardRunIds } from './restore.js';
import { counted, UnchangedWorkspace, type CollectedState } from './snapshot-encoder.js';

/** A command's or pipeline's causal trail, by its key (the runtime's why trails). */
export type TrailOf = (key: string) => Array<{ at: number; text: string }>;

/** The keys of the children a persisted workspace snapshot still holds (finished ones are gone). */
export function childKeysOf(persisted: unknown): Set<string> {
  const children = (persisted as { children?: Record<string, unknown> } | null)?.children;
  return new Set(children ? Object.keys(children) : []);
}

/**
 * The workspace's live runs that its actor's persisted snapshot knows. The table has a run
 * before its actor does (SPAWNED crosses to the actor's thread, its snapshot back), and a
 * relaunch by standing order before the actor hears of it: a file written meanwhile must hold
 * the table and the actor as one cut, so the run is left out, as at the moment before its spawn.
 * After a crash it is then an orphan of no snapshot (killed by its mark), and its actor, still
 * starting it, starts the command again: what a crash an instant earlier would have left.
 */
function processesOf(ws: WorkspaceEntry, table: ProcessTable): PersistedProcess[] {
  const out: PersistedProcess[] = [];
  const alive = table.aliveIn(ws);
  if (alive.length === 0) return out;
  const known = knownRunIds(ws.persisted);
  for (const run of alive) {
    if (!known.has(run.id)) continue;
    // Our own unreaped child: its pid cannot have been reused, so this reads the right process.
    const stat = readProcStat(run.pid);
    if (!stat) continue;
    out.push({
      runId: run.id,
      key: run.key,
      pipelineId: run.pipelineId ?? null,
      label: run.label,
      pid: run.pid,
      startTime: stat.startTime,
      restarts: run.restarts,
      startedAt: run.startedAt,
    });
  }
  return out;
}

/**
 * The workspace's ended runs whose exit its actor's persisted snapshot has not heard: the host
 * has them first. The reverse of processesOf's cut: the
 * file holds the actor before the exit, and the exit beside it, so a restore tells it.
 */
function unheardExitsOf(ws: WorkspaceEntry, table: ProcessTable): PersistedRun[] {
  let known: Set<string> | undefined;
  const out: PersistedRun[] = [];
  for (const run of table.ofWorkspace(ws.id)) {
    if (run.alive || run.exit === null) continue;
    known ??= unheardRunIds(ws.persisted);
    if (known.has(run.id)) out.push(persistedRun(run));
  }
  return out;
}

function workspaceRecord(ws: WorkspaceEntry, table: ProcessTable, trail: TrailOf): PersistedWorkspace {
  const live = childKeysOf(ws.persisted);
  const unheardExits = unheardExitsOf(ws, table);
  return counted({
    id: ws.id,
    spec: ws.spec,
    createdAt: ws.createdAt,
    actor: ws.persisted,
    commands: [...ws.commands.values()]
      .filter((command) => live.has(command.key))
      .map((command) => ({ key: command.key, label: command.label, spec: command.spec, policy: command.policy })),
    pipelines: [...ws.pipelines.values()].filter((p) => live.has(p.id)).map((p) => ({ id: p.id, spec: p.spec })),
    processes: processesOf(ws, table),
    history: historyOf(ws, table, live, trail),
    ...(ws.placement.kind !== 'local' ? { placement: ws.placement } : {}),
    ...(unheardExits.length > 0 ? { unheardExits } : {}),
  }, ws.changes);
}

/** Everything the snapshot file keeps, read from the runtime as it is now. */
export function collectSnapshot(
  runtimeId: string,
  registry: Registry,
  table: ProcessTable,
  savedPipelines: ReadonlyMap<string, PipelineSpec>,
  trail: TrailOf = () => [],
): SnapshotData {
  return collectChanges(runtimeId, registry, table, savedPipelines, trail, () => false) as SnapshotData;
}

/**
 * The same for a write through an encoder that `keeps` the bytes of some workspaces at their
 * change count: those are not looked into (their runs read from /proc, their history sorted),
 * only named. 10,000 idle workspaces took ~35 ms to collect at every write, more than the rest
 * of a write that kept them all.
 */
export function collectChanges(
  runtimeId: string,
  registry: Registry,
  table: ProcessTable,
  savedPipelines: ReadonlyMap<string, PipelineSpec>,
  trail: TrailOf,
  keeps: (id: string, changes: number) => boolean,
): CollectedState {
  const workspaces: CollectedState['workspaces'] = [];
  for (const ws of registry.all()) {
    // A failed actor has nothing to restore from; one not yet mirrored is in its first instant.
    if (ws.failure || ws.persisted === null) continue;
    const placement = ws.placement.kind !== 'local' ? ws.placement : undefined;
    workspaces.push(
      keeps(ws.id, ws.changes) ? new UnchangedWorkspace(ws.id, ws.changes, placement, () => workspaceRecord(ws, table, trail)) : workspaceRecord(ws, table, trail),
    );
  }
  return { runtimeId, savedPipelines: Object.fromEntries(savedPipelines), workspaces };
}
