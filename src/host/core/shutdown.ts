import type { CoreParts } from './core-parts.js';
import { addShutdownExits, aliveRuns } from '../persistence/shutdown-exits.js';
import { stopAll } from './stop-all.js';

// The end of a runtime: every workspace stopped with grace, then the placements, the clock,
// the threads and the state lock let go. And the end without a shutdown: nothing outlives it.

export async function closeAll(core: CoreParts, graceMs: number): Promise<void> {
  core.closed = true;
  const ending = core.state ? aliveRuns(core.registry, core.table) : [];
  // Saved as it is before everything stops: the next runtime on this stateDir brings it back.
  await core.state?.freeze();
  // Those still being placed too: their stop ends what their placement was preparing (a queued job).
  await stopAll(core, [...core.registry.all(), ...core.registry.allPlacing()], graceMs, 'shutdown');
  // The same state, with the exits of the runs the stops ended in its history.
  await core.state?.amendFrozen((data) => addShutdownExits(data, ending));
  core.quota.close();
  core.probes.close();
  for (const placement of core.placements.all()) await placement.close();
  core.clocks.releaseAll();
  await core.pool.close();
  await core.logFiles?.closeAll();
  await core.stateLock?.release();
}

/**
 * The process is exiting without a shutdown: no child may outlive it — unless a stateDir with
 * orphans 'adopt' keeps them for the next runtime (docs/reliability.md § When the runtime dies).
 */
export function killEverythingNow(core: CoreParts): void {
  if (core.state !== null && core.orphanPolicy === 'adopt') return;
  // First, so that the kills below set off no relaunch; and a run started at an exit and not yet
  // told is in none of the groups below (Node runs no addon clean-up at process.exit).
  core.spawner.stopSpawning?.();
  for (const ws of [...core.registry.all(), ...core.registry.allPlacing()]) core.placementOf(ws).killNow(ws);
}
