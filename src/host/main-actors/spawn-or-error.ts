import { ShumaError } from '../../protocol/errors.js';
import type { SpawnedProcess, Spawner, SpawnOrder } from '../spawn/spawner.js';

/** Spawns; a failure is a value (the actor tells it as SPAWN_FAILED), never a rejection. */
export async function spawnOrError(spawner: Spawner, order: SpawnOrder): Promise<SpawnedProcess | ShumaError> {
  try {
    return await spawner.spawn(order);
  } catch (error) {
    return error instanceof ShumaError ? error : new ShumaError('SPAWN_FAILED', String(error));
  }
}
