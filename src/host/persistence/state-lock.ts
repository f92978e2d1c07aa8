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
import { randomUUID } from 'node:crypto';
import { constants, promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { ShumaError, isShumaError } from '../../protocol/errors.js';
import { isSameProcess, readProcStat } from '../processes/proc.js';

export const LOCK_FILE = 'shuma.lock';
const DRAFT_PREFIX = `${LOCK_FILE}.draft-`;
const CLAIM_PREFIX = `${LOCK_FILE}.claim-`;

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

/** What a lock, a draft or a claim holds: one process, for all time, and one acquisition of it. */
interface LockRecord {
  pid: number;
  /** Field 22 of /proc/<pid>/stat, clock ticks after boot: tells a reused pid apart. */
  startTime: number;
  /** A start time only means something within one boot. */
  bootId: string;
  /** Unique per acquisition: tells apart two runtimes of one process, and names claims. */
  token: string;
  acquiredAt: number;
}

type Reading =
  | { kind: 'missing' }
  | { kind: 'invalid'; why: string }
  | { kind: 'record'; record: LockRecord };

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

// ── the state directory ──────────────────────────────────────────────────────────────

async function prepareStateDir(stateDir: string): Promise<string> {
  const dir = path.resolve(stateDir);
  await createIfMissing(dir);
  const stat = await fs.lstat(dir).catch((error: unknown) => {
    throw invalidDir(dir, `cannot be examined (${errnoOf(error) ?? String(error)})`, error);
  });
  if (stat.isSymbolicLink()) {
    throw invalidDir(dir, 'is a symbolic link; give the directory it points to (a link could be redirected to another directory under a running runtime)');
  }
  if (!stat.isDirectory()) throw invalidDir(dir, 'exists but is not a directory; give a directory (it is created when missing)');
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) {
    throw invalidDir(dir, `belongs to uid ${stat.uid}, not to this process (uid ${uid}): its owner could replace the lock or the snapshot; give a directory of your own`);
  }
  if ((stat.mode & 0o022) !== 0) {
    const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
    throw invalidDir(dir, `is writable by its group or by others (mode ${mode}): they could replace the lock or the snapshot; run \`chmod 700 ${dir}\``);
  }
  return dir;
}

async function createIfMissing(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    // EEXIST: something that is not a directory is in the way; the checks after this say what.
    if (errnoOf(error) === 'EEXIST') return;
    throw invalidDir(dir, `cannot be created (${errnoOf(error) ?? String(error)})`, error);
  }
}

// ── taking the lock ──────────────────────────────────────────────────────────────────

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
  const claim = path.join(dir, `${CLAIM_PREFIX}${stale.token}`);
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

/**
 * Once the lock is ours, every claim is about a lock that can never come back (tokens are
 * unique), and a draft whose process is gone is litter from a crash: both can go.
 */
async function sweepLitter(dir: string): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    const isLitter = name.startsWith(CLAIM_PREFIX) || (name.startsWith(DRAFT_PREFIX) && !draftOwnerAlive(name));
    if (isLitter) await removeIfPresent(path.join(dir, name));
  }
}

// ── records on disk ──────────────────────────────────────────────────────────────────

function ownRecord(): LockRecord {
  const self = readProcStat(process.pid);
  if (!self) throw new ShumaError('INTERNAL', 'cannot read /proc/self/stat: the state lock needs /proc');
  return { pid: process.pid, startTime: self.startTime, bootId: bootId(), token: randomUUID(), acquiredAt: Date.now() };
}

/** The owner is in the name, so a sweep can judge a draft without reading it. */
function draftName(record: LockRecord): string {
  return `${DRAFT_PREFIX}${record.pid}-${record.startTime}-${record.token}`;
}

function draftOwnerAlive(name: string): boolean {
  const [pid, startTime] = name.slice(DRAFT_PREFIX.length).split('-').map(Number);
  if (!Number.isInteger(pid) || !Number.isInteger(startTime)) return false;
  return isSameProcess({ pid: pid!, startTime: startTime! });
}

async function writeRecordFile(file: string, record: LockRecord): Promise<void> {
  const handle = await fs.open(file, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
  try {
    await handle.writeFile(JSON.stringify(record));
    // On disk before it is published: a power cut must not leave an empty lock that looks foreign.
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Gives the complete `source` file the name `name`, unless that name exists (link(2) is atomic). */
async function publish(source: string, name: string): Promise<boolean> {
  try {
    await fs.link(source, name);
    return true;
  } catch (error) {
    if (errnoOf(error) === 'EEXIST') return false; // taken: the caller reads who holds it
    throw error;
  }
}

async function readRecord(file: string): Promise<Reading> {
  let text: string;
  try {
    text = await fs.readFile(file, { encoding: 'utf8', flag: constants.O_RDONLY | constants.O_NOFOLLOW });
  } catch (error) {
    const code = errnoOf(error);
    if (code === 'ENOENT') return { kind: 'missing' };
    if (code === 'ELOOP') return { kind: 'invalid', why: 'it is a symbolic link' };
    throw error;
  }
  return parseRecord(text);
}

function parseRecord(text: string): Reading {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'invalid', why: 'its content is not JSON' }; // garbage is an outcome, reported by the caller
  }
  if (typeof value !== 'object' || value === null) return { kind: 'invalid', why: 'its content is not a lock record' };
  const { pid, startTime, bootId: boot, token, acquiredAt } = value as Record<string, unknown>;
  const valid =
    Number.isSafeInteger(pid) && (pid as number) > 0 &&
    Number.isSafeInteger(startTime) && (startTime as number) >= 0 &&
    typeof boot === 'string' && typeof token === 'string' && token.length > 0 &&
    typeof acquiredAt === 'number';
  if (!valid) return { kind: 'invalid', why: 'its content is not a lock record' };
  return { kind: 'record', record: value as LockRecord };
}

async function removeIfPresent(file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (error) {
    if (errnoOf(error) !== 'ENOENT') throw error; // already gone is what we wanted
  }
}

let cachedBootId: string | undefined;

function bootId(): string {
  cachedBootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return cachedBootId;
}

function errnoOf(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

// ── errors ───────────────────────────────────────────────────────────────────────────

function lockedError(dir: string, owner: LockRecord): ShumaError {
  const who = owner.pid === process.pid ? `pid ${owner.pid}, this very process` : `pid ${owner.pid}`;
  return new ShumaError(
    'STATE_DIR_LOCKED',
    `stateDir ${dir} is in use by another shuma runtime (${who}, since ${new Date(owner.acquiredAt).toISOString()}); ` +
      'shut that runtime down first, or give this one a different stateDir',
    { field: 'stateDir' },
  );
}

function takingOverError(dir: string, claimant: LockRecord): ShumaError {
  return new ShumaError(
    'STATE_DIR_LOCKED',
    `stateDir ${dir} is being taken over from a crashed runtime by another starting runtime (pid ${claimant.pid}); ` +
      'only one runtime may use a stateDir: shut that one down first, or give this one a different stateDir',
    { field: 'stateDir' },
  );
}

function notALockFile(dir: string, file: string, why: string): ShumaError {
  return new ShumaError(
    'STATE_DIR_INVALID',
    `${file} is not a usable shuma lock (${why}); if no shuma runtime uses ${dir}, remove it and start again`,
    { field: 'stateDir' },
  );
}

function invalidDir(dir: string, what: string, error?: unknown): ShumaError {
  const cause = errnoOf(error);
  return new ShumaError('STATE_DIR_INVALID', `stateDir ${dir} ${what}`, cause ? { field: 'stateDir', cause } : { field: 'stateDir' });
}
