import type { RunView, RuntimeView } from '../host/runtime-view.js';
import type { ActorTable } from './model.js';

// What a page is sent for the actor it selected: a workspace's stats history; a command's or a
// pipeline's why() trail and the last output of its latest run (each node's, for a pipeline),
// with the Slurm node it runs on.

/** Bytes of a command's output the page shows: its last screenful or so, not its whole ring. */
const OUTPUT_TAIL_BYTES = 4096;

/**
 * The latest run's output of a command (by its key), or of each node of a pipeline (by the
 * pipeline's id), stdout and stderr apart, as text.
 */
export function outputTail(runs: readonly RunView[], id: string, machine: string): Array<{ label: string; node?: string; stdout: string; stderr: string }> {
  const latest = new Map<string, RunView>();
  for (const run of runs) {
    if (machine === 'pipeline' ? run.pipelineId === id : run.key === id && run.pipelineId === undefined) latest.set(run.label, run);
  }
  return [...latest.values()].map((run) => ({
    label: run.label,
    // Where it runs, when that is not this machine (a Slurm node): the page shows it.
    ...(run.node !== undefined ? { node: run.node } : {}),
    stdout: run.stdout.tail(OUTPUT_TAIL_BYTES).toString('utf8'),
    stderr: run.stderr.tail(OUTPUT_TAIL_BYTES).toString('utf8'),
  }));
}

/** The detail message of a selected actor, or null when the table no longer knows it. */
export function detailOf(
  table: ActorTable,
  source: Pick<RuntimeView, 'clock' | 'statsHistory' | 'why' | 'table'>,
  id: string,
): Record<string, unknown> | null {
  const view = table.get(id);
  if (!view) return null;
  const detail: Record<string, unknown> = { type: 'detail', id, now: source.clock.now(), context: table.snapshotOf(id)?.context ?? null };
  if (view.machine === 'workspace') {
    detail.stats = source.statsHistory(id, 60);
  } else {
    detail.why = source.why.get(id);
    detail.output = outputTail(source.table.ofWorkspace(view.rootId), id, view.machine);
  }
  return detail;
}
