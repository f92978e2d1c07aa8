// A pipeline stopped (when it still runs) and forgotten, for `apply`: one the spec no longer
// has (`--prune`), or the earlier run of one whose spec changed. `ps` no longer lists it; its
// log files stay on disk, as a removed command's do.
import type { CoreParts } from './core-parts.js';
import { stopPipeline } from './commands-and-pipelines.js';
import { pipelineEntry } from './guards.js';
import { forgetPipelineRecord } from './record-forget.js';

export async function forgetPipeline(core: CoreParts, id: string, graceMs?: number): Promise<{ reaped: number }> {
  const pipeline = pipelineEntry(core, id);
  const { reaped } = await stopPipeline(core, id, graceMs);
  const ws = core.registry.get(pipeline.wsId);
  await forgetPipelineRecord(core, ws, pipeline, 'kept');
  core.state?.markDirty(ws);
  return { reaped };
}
