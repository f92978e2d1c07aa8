// A workspace that runs one-shot jobs for months must not grow with every job. It keeps its
// newest finished commands and pipelines (listed, their logs readable, a command restartable) up
// to `keepFinished` of each; older ones are forgotten as `removeCommand` forgets one: gone from
// `ps`, their label free again, their log files left on disk. Slurm keeps ended jobs the same way
// (MaxJobCount); without it, every run's entry, ring and file handle stayed for the workspace's life.
import type { LogFiles } from '../processes/log-files.js';
import type { WhyTrails } from './why-trail.js';
import type { ProcessTable } from '../processes/process-table.js';
import type { CommandEntry, PipelineEntry, WorkspaceEntry } from '../registry/registry.js';

export const DEFAULT_KEEP_FINISHED = 1000;

export interface ForgetParts {
  readonly table: ProcessTable;
  readonly pipelines: Map<string, PipelineEntry>;
  readonly logFiles: LogFiles | null;
  readonly why: WhyTrails;
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
  for (const command of commands) forgetCommand(parts, ws, command);
  for (const pipeline of pipelines) forgetPipelineRecord(parts, ws, pipeline);
  if (commands.length + pipelines.length > 0) ws.changes++;
  nextWalk.set(ws, Math.max(ws.commands.size + ws.pipelines.size, keep) + slackOf(keep));
}

/** The ones past the newest `keep` (entries are in creation order: ids are monotonic ULIDs). */
function oldestFirst<T>(finished: T[], keep: number): T[] {
  return finished.slice(0, Math.max(0, finished.length - keep));
}

function forgetCommand(parts: ForgetParts, ws: WorkspaceEntry, command: CommandEntry): void {
  ws.commands.delete(command.key);
  parts.why.forget(command.key, parts.table.removeCommand(ws.id, command.key));
  void parts.logFiles?.releaseOne({ wsId: ws.id, key: command.key, label: command.label });
}

function forgetPipelineRecord(parts: ForgetParts, ws: WorkspaceEntry, pipeline: PipelineEntry): void {
  ws.pipelines.delete(pipeline.id);
  parts.pipelines.delete(pipeline.id);
  parts.why.forget(pipeline.id, parts.table.removeCommand(ws.id, pipeline.id));
  for (const node of pipeline.spec.nodes) void parts.logFiles?.releaseOne({ wsId: ws.id, key: pipeline.id, label: node.label });
}
