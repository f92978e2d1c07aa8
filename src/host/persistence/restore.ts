import { isPlainObject } from '../../protocol/checks.js';
import type { ChildEvent } from '../../protocol/machine-events.js';
import { validatePipelineSpec, type PipelineSpec } from '../../protocol/pipeline-spec.js';
import type { PersistedRun } from './finished.js';
import type { PersistedProcess, PersistedWorkspace, SnapshotData } from './snapshot-data.js';
import { stateName } from '../../protocol/state-value.js';

/** What a restore needs of the runtime. */
export interface RestoreTarget {
  readonly savedPipelines: Map<string, PipelineSpec>;
  warn(message: string): void;
  /** `exits`: what its children hear once restored, by child key (the exits they had not heard). */
  restoreWorkspace(record: PersistedWorkspace, lostKeys: string[], adopted: PersistedProcess[], exits: ChildExit[]): Promise<void>;
}

/** An exit a restored child hears, as the host would have told it. */
export interface ChildExit {
  key: string;
  event: ChildEvent;
}

const RESTORE_BATCH = 100;

/** Machine states in which an actor has (or is getting) a process of its own. */
const HOLDS_PROCESS: Record<string, readonly string[]> = {
  command: ['starting', 'up', 'running', 'ending', 'restarting', 'stopping'],
  pipeline: ['created', 'running', 'splicing', 'reaping', 'restarting', 'stopping'],
};

/** Command states whose run (context.runId) still goes on, as its actor knows: it has not heard that run's exit. */
const RUN_GOING = new Set(['up', 'running', 'ending', 'stopping']);

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
 * The runs whose exit the actor's children have not heard: a command's current run while it
 * goes on, a pipeline's nodes of the attempt without an exit. (knownRunIds also holds runs
 * already heard: a restarting command's last one, a pipeline's nodes that ended.)
 */
export function unheardRunIds(actor: unknown): Set<string> {
  const children = (actor as { children?: Record<string, PersistedChild> } | null)?.children ?? {};
  const unheard = new Set<string>();
  for (const child of Object.values(children)) {
    const snapshot = child.snapshot as { status?: unknown; value?: unknown; context?: { runId?: unknown; runs?: unknown; exits?: unknown } } | undefined;
    const context = snapshot?.context;
    if (snapshot?.status !== 'active' || !context) continue;
    const state = stateName(snapshot.value);
    if (child.src === 'command') {
      if (RUN_GOING.has(state) && typeof context.runId === 'string') unheard.add(context.runId);
    } else if (child.src === 'pipeline' && HOLDS_PROCESS.pipeline!.includes(state) && isPlainObject(context.runs)) {
      const exits = isPlainObject(context.exits) ? context.exits : {};
      for (const [label, id] of Object.entries(context.runs)) if (typeof id === 'string' && exits[label] === undefined) unheard.add(id);
    }
  }
  return unheard;
}

/**
 * Children whose processes did not come through the restart (none adopted, or not all of a
 * pipeline's): they hear RUN_LOST. A run whose exit the file holds (`endedRunIds`) did not
 * get lost: it ended, and its child hears how (exitsToTell).
 */
export function lostChildren(actor: unknown, adoptedRunIds: ReadonlySet<string> = new Set(), endedRunIds: ReadonlySet<string> = new Set()): string[] {
  const children = (actor as { children?: Record<string, PersistedChild> } | null)?.children ?? {};
  return Object.entries(children)
    .filter(([, child]) => {
      const machine = typeof child.src === 'string' ? child.src : '';
      if (child.snapshot?.status !== 'active' || !(HOLDS_PROCESS[machine] ?? []).includes(stateName(child.snapshot.value))) return false;
      const ids = runIdsOf(child);
      return ids.length === 0 || !ids.every((id) => adoptedRunIds.has(id) || endedRunIds.has(id));
    })
    .map(([key]) => key);
}

/** The record's exits its actor had not heard, well formed (the file is untrusted), and held by its actor. */
function unheardExitsOf(record: PersistedWorkspace): PersistedRun[] {
  if (!Array.isArray(record.unheardExits)) return [];
  const known = unheardRunIds(record.actor);
  return record.unheardExits.filter(
    (run) =>
      isPlainObject(run) &&
      typeof run.runId === 'string' &&
      known.has(run.runId) &&
      typeof run.key === 'string' &&
      typeof run.label === 'string' &&
      (run.pipelineId === null || typeof run.pipelineId === 'string') &&
      isPlainObject(run.exit) &&
      typeof run.exit.status === 'number' &&
      (run.exit.code === null || typeof run.exit.code === 'number') &&
      (run.exit.signal === null || typeof run.exit.signal === 'string'),
  );
}

/** The exits of `ended` told to the children that are not lost, as the reaper tells an exit. */
function exitsToTell(ended: readonly PersistedRun[], lostKeys: readonly string[], at: number): ChildExit[] {
  const lost = new Set(lostKeys);
  const exits: ChildExit[] = [];
  for (const run of ended) {
    const { code, signal, status } = run.exit;
    if (run.pipelineId === null) {
      if (!lost.has(run.key)) exits.push({ key: run.key, event: { type: 'EXITED', at, runId: run.runId, code, signal, status } });
    } else if (!lost.has(run.pipelineId)) {
      exits.push({ key: run.pipelineId, event: { type: 'NODE_EXITED', at, label: run.label, runId: run.runId, code, signal, status } });
    }
  }
  return exits;
}

/**
 * Brings a snapshot back. `adoptable` are the processes of the crashed runtime that are still
 * running and that the 'adopt' policy keeps: their actors go on watching them.
 */
export async function restoreSnapshot(
  target: RestoreTarget,
  data: SnapshotData,
  adoptable: ReadonlySet<string> = new Set(),
  at: number = Date.now(),
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
      const ended = unheardExitsOf(record);
      const lostKeys = lostChildren(record.actor, new Set(adopted.map((p) => p.runId)), new Set(ended.map((run) => run.runId)));
      await target.restoreWorkspace(record, lostKeys, adopted, exitsToTell(ended, lostKeys, at));
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
