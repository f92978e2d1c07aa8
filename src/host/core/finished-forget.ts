// A workspace that runs one-shot jobs for months must not grow with every job. It keeps its
// newest finished commands and pipelines (listed, their logs readable, a command restartable) up
// to `keepFinished` of each; older ones are forgotten as `removeCommand` forgets one (core/record-forget.ts): gone from
// `ps`, their label free again, their log files left on disk. Slurm keeps ended jobs the same way
// (MaxJobCount); without it, every run's entry, ring and file handle stayed for the workspace's life.
import type { WorkspaceEntry } from '../registry/registry.js';
import { forgetCommandRecord, forgetPipelineRecord, type RecordParts } from './record-forget.js';

export const DEFAULT_KEEP_FINISHED = 1000;

export interface ForgetParts extends RecordParts {
  readonly keepFinished: number;
}

/**
 * Trimmed in steps, back down to the bound once it is passed by an eighth of it: a workspace's
 * entries are walked once per `keep / 8` new ones, not at every run.
 */
const nextWalk = new WeakMap<WorkspaceEntry, number>();

function slackOf(keep: number): number {
  return Math.max(1, Math.ceil(keep / 8));
}

/** Forgets the oldest finished commands and pipelines past the bound; `busy` names a command being restarted. */
export function forgetOldFinished(parts: ForgetParts, ws: WorkspaceEntry, busy: (key: string) => boolean): void {
  const keep = parts.keepFinished;
  const size = ws.commands.size + ws.pipelines.size;
  if (size <= (nextWalk.get(ws) ?? keep + slackOf(keep))) return;
  const commands = oldestFirst([...ws.commands.values()].filter((c) => c.snapshot?.status === 'done' && !busy(c.key) && parts.table.settled(ws.id, c.key)), keep);
  const pipelines = oldestFirst([...ws.pipelines.values()].filter((p) => p.snapshot?.status === 'done' && p.done.settled && parts.table.settled(ws.id, p.id)), keep);
  for (const command of commands) void forgetCommandRecord(parts, ws, command, 'forgotten');
  for (const pipeline of pipelines) void forgetPipelineRecord(parts, ws, pipeline, 'forgotten');
  if (commands.length + pipelines.length > 0) ws.changes++;
  nextWalk.set(ws, Math.max(ws.commands.size + ws.pipelines.size, keep) + slackOf(keep));
}

/** The ones past the newest `keep` (entries are in creation order: ids are monotonic ULIDs). */
function oldestFirst<T>(finished: T[], keep: number): T[] {
  return finished.slice(0, Math.max(0, finished.length - keep));
}
