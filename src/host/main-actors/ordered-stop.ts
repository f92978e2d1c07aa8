import type { ProcessTable } from '../processes/process-table.js';
import type { WorkspaceEntry } from '../registry/registry.js';

/**
 * A workspace stop in dependency order (systemd and process-compose stop dependants first):
 * SIGTERM to the runs of each wave of command keys, the next wave once those have ended. What
 * no wave names (pipelines, commands outside any dependency) goes with the first. The last
 * wave's signal reaches the whole scope (escaped descendants, the cgroup). The workspace's grace
 * bounds it all: once it sends SIGKILL, the waves left are moot.
 */
export async function stopInWaves(
  ws: WorkspaceEntry,
  waves: readonly string[][],
  table: ProcessTable,
  terminate: (only?: ReadonlySet<number>) => void,
): Promise<void> {
  const named = new Set(waves.flat());
  for (const [index, wave] of waves.entries()) {
    if (ws.hostStop?.lastSignal === 'SIGKILL') return;
    const keys = new Set(wave);
    const runs = table.ofWorkspace(ws.id).filter((run) => run.alive && (keys.has(run.key) || (index === 0 && !named.has(run.key))));
    if (index === waves.length - 1) {
      terminate();
      return;
    }
    terminate(new Set(runs.map((run) => run.pid)));
    await Promise.all(runs.map((run) => run.exited.promise.catch(() => undefined)));
  }
}
