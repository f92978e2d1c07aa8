import type { CoreParts } from './core-parts.js';
import type { HealthCounts } from './runtime-options.js';

/** What is alive now, counted for `rt.health()` and the daemon's health endpoint. */
export function healthOf(core: CoreParts, workerRestarts: number): HealthCounts {
  let alivePipelines = 0;
  for (const pipeline of core.pipelines.values()) if (!pipeline.done.settled) alivePipelines++;
  return {
    aliveWorkspaces: core.registry.size,
    aliveCommands: core.table.aliveCount,
    alivePipelines,
    activeFlows: core.flows.activeCount,
    workerRestarts,
    spawner: core.spawner.name,
  };
}
