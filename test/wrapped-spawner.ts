import { coreOf } from '../src/host/runtime.js';
import type { SpawnedProcess, SpawnOrder, Spawner } from '../src/host/spawn/spawner.js';
import type { Runtime } from '../src/index.js';

/**
 * Puts `spawn` in place of the local placement's spawner's own (which it is given, to call),
 * to watch or hold spawns; the spawner stays itself otherwise (name, limits, acting ahead unless told).
 * Returns what puts the real spawner back.
 */
export function wrapSpawner(
  rt: Runtime,
  spawn: (order: SpawnOrder, real: Spawner) => Promise<SpawnedProcess>,
  /** `actsAhead: false`: no restart is relaunched ahead, so every one passes through `spawn`. */
  options: { actsAhead?: boolean } = {},
): () => void {
  const host = (coreOf(rt).placements.local as unknown as { host: { deps: { spawner: Spawner } } }).host;
  const real = host.deps.spawner;
  const actsAhead = options.actsAhead ?? real.actsAhead;
  host.deps.spawner = {
    name: real.name,
    appliesLimits: real.appliesLimits,
    ...(actsAhead !== undefined ? { actsAhead } : {}),
    spawn: (order) => spawn(order, real),
  };
  return () => {
    host.deps.spawner = real;
  };
}
