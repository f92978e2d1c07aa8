// One runtime per state directory: a lock file that names its owner (pid, start time, boot),
// so that a lock left by a crashed runtime is recognised as stale and taken over, never stuck.
//
// Files in the state directory:
//   shuma.lock                     the lock: JSON of the owner's LockRecord, mode 0600
//   shuma.lock.draft-<pid>-<start>-<token>
//                                  a starter's record, written and fsynced before it is
//                                  published under another name with link(2): a lock or claim
//                                  is never seen half-written
//   shuma.lock.claim-<token>       the right to remove the stale file whose record has <token>
//
// Taking over a stale lock is where two starters race. Removing a file by name is not
// conditional (a starter that renames or unlinks `shuma.lock` after deciding it is stale may
// hit the fresh lock that a faster starter has just put there), so removal is made exclusive
// instead: only the starter that published the claim for that stale record's token may remove
// it, and it checks that the file still holds that record first. Nobody else removes it (its
// owner is dead), and no new lock can appear while it is there, so the check stays true until
// the unlink. A claim left by a starter that crashed mid-takeover is itself a stale record: it
// is removed the same way, through a claim on its own token.
//
// This file is that takeover; the directory's checks are state-dir.ts, the records on disk
// state-lock-records.ts, the refusals state-lock-errors.ts.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isShumaError, ShumaError } from '../../protocol/errors.js';
import { isSameProcess } from '../processes/proc.js';
import { prepareStateDir } from './state-dir.js';
import { invalidDir, lockedError, notALockFile, takingOverError } from './state-lock-errors.js';
import {
  bootId,
  claimName,
  draftName,
  isLitter,
  LOCK_FILE,
  ownRecord,
  publish,
  readRecord,
  removeIfPresent,
  writeRecordFile,
  type LockRecord,
} from './state-lock-records.js';

export { LOCK_FILE } from './state-lock-records.js';

/** Publish attempts before giving up: each failed one means the lock changed hands meanwhile. */
const MAX_ATTEMPTS = 10;
/** Claims on claims: each level needs another starter to have crashed mid-takeover. */
const MAX_CLAIM_DEPTH = 8;

export interface StateLock {
  /** The state directory, as an absolute path. */
  readonly stateDir: string;
  /** The lock file inside it. */
  readonly path: string;
  /** Removes the lock file if it is still this lock's; later calls do nothing. */
  release(): Promise<void>;
}

/**
 * Takes the state directory for this runtime: creates it (mode 0700) if missing, refuses one
 * that is unsafe (STATE_DIR_INVALID), takes over a lock left by a dead runtime, and rejects
 * with STATE_DIR_LOCKED while a live runtime holds it.
 */
export async function acquireStateLock(stateDir: string): Promise<StateLock> {
  try {
    return await acquire(stateDir);
  } catch (error) {
    if (isShumaError(error)) throw error;
    // An OS error on the way (EACCES, EROFS, ENOSPC…): the directory is not usable as it is.
    throw invalidDir(path.resolve(stateDir), `cannot be used (${String(error)})`, error);
  }
}

async function acquire(stateDir: string): Promise<StateLock> {
  const dir = await prepareStateDir(stateDir);
  const lockPath = path.join(dir, LOCK_FILE);
  const record = ownRecord();
  const draft = path.join(dir, draftName(record));
  await writeRecordFile(draft, record);
  try {
    await takeLock(dir, lockPath, draft);
  } finally {
    await removeIfPresent(draft);
  }
  const lock = new HeldLock(dir, lockPath, record.token);
  try {
    await sweepLitter(dir);
  } catch (error) {
    // The caller gets the error, not a lock: it must not stay held by nobody's handle.
    await lock.release();
    throw error;
  }
  return lock;
}

class HeldLock implements StateLock {
  readonly stateDir: string;
  readonly path: string;
  readonly #token: string;
  #released = false;

  constructor(stateDir: string, lockPath: string, token: string) {
    this.stateDir = stateDir;
    this.path = lockPath;
    this.#token = token;
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    const current = await readRecord(this.path);
    // Gone or replaced (by hand: no runtime removes a live lock): not ours to remove any more.
    if (current.kind === 'record' && current.record.token === this.#token) await removeIfPresent(this.path);
  }
}

async function takeLock(dir: string, lockPath: string, draft: string): Promise<void> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (await publish(draft, lockPath)) return;
    const current = await readRecord(lockPath);
    if (current.kind === 'missing') continue; // released or taken over since the publish: look again
    if (current.kind === 'invalid') throw notALockFile(dir, lockPath, current.why);
    if (isHeld(current.record)) throw lockedError(dir, current.record);
    await removeStale(dir, lockPath, current.record, draft, 0);
  }
  throw new ShumaError(
    'STATE_DIR_LOCKED',
    `stateDir ${dir}: the lock changed hands ${MAX_ATTEMPTS} times while this runtime tried to take it; ` +
      'several runtimes are starting on it at once: start one at a time',
    { field: 'stateDir' },
  );
}

/**
 * Removes `target`, whose owner (`stale`) is dead, if no other starter is already doing so.
 * Returns when the caller should look at the lock again (whoever removed it).
 */
async function removeStale(dir: string, target: string, stale: LockRecord, draft: string, depth: number): Promise<void> {
  if (depth > MAX_CLAIM_DEPTH) {
    throw notALockFile(dir, target, `${MAX_CLAIM_DEPTH} takeovers in a row were abandoned midway`);
  }
  const claim = path.join(dir, claimName(stale.token));
  if (!(await publish(draft, claim))) {
    const holder = await readRecord(claim);
    if (holder.kind === 'missing') return; // that takeover has just finished
    if (holder.kind === 'invalid') throw notALockFile(dir, claim, holder.why);
    if (isHeld(holder.record)) throw takingOverError(dir, holder.record);
    await removeStale(dir, claim, holder.record, draft, depth + 1);
    return;
  }
  try {
    const current = await readRecord(target);
    // Anything else there means someone else removed the stale file first (and maybe locked).
    if (current.kind === 'record' && current.record.token === stale.token) await removeIfPresent(target);
  } finally {
    await removeIfPresent(claim);
  }
}

/** Whether the process that wrote `record` is still running (not a reuse of its pid). */
function isHeld(record: LockRecord): boolean {
  return record.bootId === bootId() && isSameProcess(record);
}

/** Claims and crashed starters' drafts, removed once the lock is ours (see isLitter). */
async function sweepLitter(dir: string): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    if (isLitter(name)) await removeIfPresent(path.join(dir, name));
  }
}
