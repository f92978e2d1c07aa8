// One way a command's or a pipeline's record is let go, whoever lets it go: `removeCommand`,
// `apply` replacing or pruning a pipeline, and the `keepFinished` bound. Each drops the same
// things (entry, runs with their rings, open log-file handles; the files stay on disk), so no
// path can leave a file handle or a run behind that another path closes. Only the why trail
// differs: a user who removed a command can still ask `why(id)` what happened to it (the trails
// are bounded on their own), while the bound lets it go, since memory is what it is for.
import type { LogFiles } from '../processes/log-files.js';
import type { ProcessTable } from '../processes/process-table.js';
import type { CommandEntry, PipelineEntry, WorkspaceEntry } from '../registry/registry.js';
import type { WhyTrails } from './why-trail.js';

export interface RecordParts {
  readonly table: ProcessTable;
  readonly pipelines: Map<string, PipelineEntry>;
  readonly logFiles: LogFiles | null;
  readonly why: WhyTrails;
}

/** Whether `why(id)` still answers once the record is gone. */
export type TrailAfter = 'kept' | 'forgotten';

/** `ws` is the command's workspace entry, when it still has one. */
export function forgetCommandRecord(parts: RecordParts, ws: WorkspaceEntry | undefined, command: CommandEntry, trail: TrailAfter): Promise<void> {
  ws?.commands.delete(command.key);
  const runIds = parts.table.removeCommand(command.wsId, command.key);
  if (trail === 'forgotten') parts.why.forget(command.key, runIds);
  return releaseFiles(parts, command.wsId, command.key, [command.label]);
}

/** `ws` is the pipeline's workspace entry, when it still has one. */
export function forgetPipelineRecord(parts: RecordParts, ws: WorkspaceEntry | undefined, pipeline: PipelineEntry, trail: TrailAfter): Promise<void> {
  ws?.pipelines.delete(pipeline.id);
  parts.pipelines.delete(pipeline.id);
  const runIds = parts.table.removeCommand(pipeline.wsId, pipeline.id);
  if (trail === 'forgotten') parts.why.forget(pipeline.id, runIds);
  return releaseFiles(parts, pipeline.wsId, pipeline.id, pipeline.spec.nodes.map((node) => node.label));
}

async function releaseFiles(parts: RecordParts, wsId: string, key: string, labels: readonly string[]): Promise<void> {
  const files = parts.logFiles;
  if (!files) return;
  await Promise.all(labels.map((label) => files.releaseOne({ wsId, key, label })));
}
