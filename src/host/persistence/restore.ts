import { validatePipelineSpec, type PipelineSpec } from '../../protocol/pipeline-spec.js';
import type { PersistedProcess, PersistedWorkspace, SnapshotData } from './snapshot-data.js';
import { stateName } from '../../protocol/state-value.js';

/** What a restore needs of the runtime. */
export interface RestoreTarget {
  readonly savedPipelines: Map<string, PipelineSpec>;
  warn(message: string): void;
  restoreWorkspace(record: PersistedWorkspace, lostKeys: string[], adopted: PersistedProcess[]): Promise<void>;
}

const RESTORE_BATCH = 100;

/** Machine states in which an actor has (or is getting) a process of its own. */
const HOLDS_PROCESS: Record<string, readonly string[]> = {
  command: ['starting', 'running', 'restarting', 'stopping'],
  pipeline: ['created', 'running', 'reaping', 'restarting', 'stopping'],
};

interface PersistedChild {
  src?: unknown;
  snapshot?: { value?: unknown; status?: unknown };
}

/** The run ids a child's process(es) had when the snapshot was taken. */
function runIdsOf(child: PersistedChild): string[] {
  const context = (child.snapshot as { context?: { runId?: unknown; runs?: unknown } } | undefined)?.context;
  if (typeof context?.runId === 'string') return [context.runId];
  if (context?.runs && typeof context.runs === 'object') return Object.values(context.runs as Record<string, unknown>).filter((id): id is string => typeof id === 'string');
  return [];
}

/** The run ids the actor's children hold a process by (in a state that has one): the runs it knows. */
export function knownRunIds(actor: unknown): Set<string> {
  const children = (actor as { children?: Record<string, PersistedChild> } | null)?.children ?? {};
  const known = new Set<string>();
  for (const child of Object.values(children)) {
    const machine = typeof child.src === 'string' ? child.src : '';
    if (child.snapshot?.status !== 'active' || !(HOLDS_PROCESS[machine] ?? []).includes(stateName(child.snapshot.value))) continue;
    for (const id of runIdsOf(child)) known.add(id);
  }
  return known;
}

/**
 * Children whose processes did not come through the restart (none adopted, or not all of a
 * pipeline's): they hear RUN_LOST.
 */
export function lostChildren(actor: unknown, adoptedRunIds: ReadonlySet<string> = new Set()): string[] {
  const children = (actor as { children?: Record<string, PersistedChild> } | null)?.children ?? {};
  return Object.entries(children)
    .filter(([, child]) => {
      const machine = typeof child.src === 'string' ? child.src : '';
      if (child.snapshot?.status !== 'active' || !(HOLDS_PROCESS[machine] ?? []).includes(stateName(child.snapshot.value))) return false;
      const ids = runIdsOf(child);
      return ids.length === 0 || !ids.every((id) => adoptedRunIds.has(id));
    })
    .map(([key]) => key);
}

/**
 * Brings a snapshot back. `adoptable` are the processes of the crashed runtime that are still
 * running and that the 'adopt' policy keeps: their actors go on watching them.
 */
export async function restoreSnapshot(
  target: RestoreTarget,
  data: SnapshotData,
  adoptable: ReadonlySet<string> = new Set(),
): Promise<{ workspaces: number }> {
  for (const [name, spec] of Object.entries(data.savedPipelines)) {
    try {
      target.savedPipelines.set(name, validatePipelineSpec(spec));
    } catch (error) {
      target.warn(`saved pipeline '${name}' was not restored: ${(error as Error).message}`);
    }
  }
  let workspaces = 0;
  const restoreOne = async (record: PersistedWorkspace) => {
    try {
      const adopted = record.processes.filter((p) => adoptable.has(p.runId));
      await target.restoreWorkspace(record, lostChildren(record.actor, new Set(adopted.map((p) => p.runId))), adopted);
      workspaces++;
    } catch (error) {
      target.warn(`workspace ${record.id} (${String(record.spec.label)}) was not restored: ${(error as Error).message}`);
    }
  };
  // Each restore waits for a round trip to its worker: many at once fill the batches.
  for (let i = 0; i < data.workspaces.length; i += RESTORE_BATCH) {
    await Promise.all(data.workspaces.slice(i, i + RESTORE_BATCH).map(restoreOne));
  }
  return { workspaces };
}
