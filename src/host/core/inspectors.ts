import { ShumaError } from '../../protocol/errors.js';
import type { InspectionRecord } from '../../protocol/actor-records.js';
import type { CoreParts } from './core-parts.js';

/**
 * An observer of every actor's inspection records. The workers make records only while
 * someone observes: the first observer turns them on, the last one gone turns them off.
 */
export function addInspector(core: CoreParts, observer: (record: InspectionRecord) => void): () => void {
  if (typeof observer !== 'function') {
    throw new ShumaError('INVALID_ARGUMENT', 'inspect(observer) needs a function that takes an inspection record');
  }
  core.inspectors.add(observer);
  if (core.inspectors.size === 1) core.pool.broadcast({ type: 'inspect', enabled: true });
  return () => {
    if (core.inspectors.delete(observer) && core.inspectors.size === 0 && !core.closed) {
      core.pool.broadcast({ type: 'inspect', enabled: false });
    }
  };
}
