import { ShumaError } from '../../protocol/errors.js';
import { NativeSpawner } from './native-spawner.js';
import { NodeSpawner } from './node-spawner.js';
import type { Spawner } from './spawner.js';

// Which spawner a runtime uses: the native one when its addon loads, else child_process,
// said out loud. SHUMA_SPAWNER=node forces child_process; =native makes a load failure fatal.

export interface SpawnerChoice {
  spawner: Spawner;
  /** Why the runtime runs on child_process though nobody asked for it; null otherwise. */
  warning: string | null;
}

export function createSpawner(asked: string | undefined): SpawnerChoice {
  if (asked === 'node') return { spawner: new NodeSpawner(), warning: null };
  if (asked !== undefined && asked !== '' && asked !== 'native') {
    throw new ShumaError('INVALID_ARGUMENT', `SHUMA_SPAWNER must be 'native' or 'node' (got '${asked}')`);
  }
  try {
    return { spawner: new NativeSpawner(), warning: null };
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    if (asked === 'native') {
      throw new ShumaError('INVALID_ARGUMENT', `SHUMA_SPAWNER=native but the native spawner cannot load: ${why}`);
    }
    return {
      spawner: new NodeSpawner(),
      warning: `the native spawner cannot load (${why}): processes are started with child_process, whose fork() slows down as the runtime grows`,
    };
  }
}
