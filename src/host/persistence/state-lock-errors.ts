import { ShumaError } from '../../protocol/errors.js';
import { errnoOf } from './durable-files.js';

export { errnoOf };

// What taking the state lock can refuse, and how each message says what to do: another runtime
// holds the directory (STATE_DIR_LOCKED), or the directory or a file in it cannot be used
// (STATE_DIR_INVALID).

/** Who holds a lock or a claim, as much of its record as a message names. */
interface Holder {
  pid: number;
  acquiredAt: number;
}

export function lockedError(dir: string, owner: Holder): ShumaError {
  const who = owner.pid === process.pid ? `pid ${owner.pid}, this very process` : `pid ${owner.pid}`;
  return new ShumaError(
    'STATE_DIR_LOCKED',
    `stateDir ${dir} is in use by another shuma runtime (${who}, since ${new Date(owner.acquiredAt).toISOString()}); ` +
      'shut that runtime down first, or give this one a different stateDir',
    { field: 'stateDir' },
  );
}

export function takingOverError(dir: string, claimant: Holder): ShumaError {
  return new ShumaError(
    'STATE_DIR_LOCKED',
    `stateDir ${dir} is being taken over from a crashed runtime by another starting runtime (pid ${claimant.pid}); ` +
      'only one runtime may use a stateDir: shut that one down first, or give this one a different stateDir',
    { field: 'stateDir' },
  );
}

export function notALockFile(dir: string, file: string, why: string): ShumaError {
  return new ShumaError(
    'STATE_DIR_INVALID',
    `${file} is not a usable shuma lock (${why}); if no shuma runtime uses ${dir}, remove it and start again`,
    { field: 'stateDir' },
  );
}

export function invalidDir(dir: string, what: string, error?: unknown): ShumaError {
  const cause = errnoOf(error);
  return new ShumaError('STATE_DIR_INVALID', `stateDir ${dir} ${what}`, cause ? { field: 'stateDir', cause } : { field: 'stateDir' });
}
