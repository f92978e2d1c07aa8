// The snapshot file: one msgpack envelope in the state directory. Format 2 (written now, see
// snapshot-encoder.ts) is `{ format: 2, writtenAt, data, structures }`, `data` a bin of the state
// packed as msgpackr records whose shapes `structures` lists; format 1 (still read) is
// `{ format: 1, writtenAt, data }`, `data` plain msgpack.
//
// Writing is atomic: a temp file of our own (O_EXCL, 0600) is written and fsynced, renamed over
// `shuma.snapshot`, and the directory fsynced, so a crash at any moment leaves the old file or
// the new one, complete. Calls for one directory run one at a time in this module; other
// processes are kept out by the state lock (state-lock.ts), which the runtime takes first.
//
// Reading treats the file as untrusted input: every byte is checked first by the non-recursive
// walk of protocol/msgpack-check.ts (nesting at most SNAPSHOT_MAX_DEPTH, no extension but
// undefined and Date). Only then does msgpackr decode it, and the envelope is validated; in
// format 2 the table of shapes is checked, then the data's bytes are walked again knowing each
// record's shape, and only then decoded. A file that fails any of this is renamed aside and
// reported, never thrown about and never lost.
import { randomUUID } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { FileHandle } from 'node:fs/promises';
import { ShumaError, isShumaError } from '../../protocol/errors.js';
import { decodeUntrusted } from '../../protocol/codec.js';
import { errnoOf, moveToFreeName, removeIfPresent, syncDirectory, writeDurably } from './durable-files.js';
import { SNAPSHOT_FORMAT, SNAPSHOT_MAX_DEPTH, SnapshotEncoder, UnwritableSnapshot } from './snapshot-encoder.js';
import { checkShapes, decodeRecords, type Shape } from './snapshot-records.js';

export { SNAPSHOT_FORMAT, SNAPSHOT_MAX_DEPTH };

export const SNAPSHOT_FILE = 'shuma.snapshot';
export const SNAPSHOT_DEFAULT_MAX_BYTES = 256 * 2 ** 20;

const TEMP_PREFIX = `${SNAPSHOT_FILE}.tmp-`;

export interface SnapshotWrite {
  bytes: number;
  ms: number;
}

export type SnapshotRead =
  | { status: 'missing' }
  | { status: 'ok'; data: unknown; writtenAt: number }
  | { status: 'corrupt'; reason: string; keptAs: string };

export interface ReadSnapshotOptions {
  /** Larger files are reported corrupt without being read. Default 256 MiB. */
  maxBytes?: number;
}

/**
 * Replaces the snapshot with `value`, atomically and durably. Rejects with
 * SNAPSHOT_WRITE_FAILED (the old file left as it was) if the value cannot be encoded or read
 * back, or the write fails.
 */
export function writeSnapshotFile(stateDir: string, value: unknown): Promise<SnapshotWrite> {
  return writeSnapshotData(stateDir, value, new SnapshotEncoder());
}

/**
 * The runtime's state, as writeSnapshotFile writes it (the same bytes), through `encoder`:
 * the workspaces unchanged since its last write are not encoded again.
 */
export function writeSnapshotData(stateDir: string, data: unknown, encoder: SnapshotEncoder): Promise<SnapshotWrite> {
  const dir = path.resolve(stateDir);
  return serialized(dir, () =>
    writeNow(dir, () => {
      try {
        return encoder.encode(Date.now(), data);
      } catch (error) {
        throw unwritable(error);
      }
    }),
  );
}

/** Reads the snapshot. Bad content is reported as 'corrupt' (and kept aside), never thrown. */
export function readSnapshotFile(stateDir: string, options: ReadSnapshotOptions = {}): Promise<SnapshotRead> {
  const maxBytes = options.maxBytes ?? SNAPSHOT_DEFAULT_MAX_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
    return Promise.reject(new ShumaError('INVALID_ARGUMENT', `maxBytes must be a positive integer, not ${maxBytes}`, { field: 'maxBytes' }));
  }
  const dir = path.resolve(stateDir);
  return serialized(dir, () => readNow(dir, maxBytes));
}

/**
 * Renames the snapshot aside as `shuma.snapshot.<label>-<time>` and returns the new path: for a
 * file that decodes but that the runtime cannot use (its data fails the runtime's checks).
 */
export function keepSnapshotAside(stateDir: string, label = 'corrupt'): Promise<string> {
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(label)) {
    // It becomes part of a file name: nothing that could climb out of the directory.
    return Promise.reject(new ShumaError('INVALID_ARGUMENT', `label must be a short lowercase word, not ${JSON.stringify(label)}`, { field: 'label' }));
  }
  const dir = path.resolve(stateDir);
  return serialized(dir, () => keepAside(path.join(dir, SNAPSHOT_FILE), label));
}

// ── one call at a time per directory ─────────────────────────────────────────────────

const queues = new Map<string, Promise<void>>();

function serialized<T>(dir: string, task: () => Promise<T>): Promise<T> {
  const result = (queues.get(dir) ?? Promise.resolve()).then(task);
  // The caller sees a failure through `result`; the queue only waits for the task to end.
  const done = result.then(
    () => undefined,
    () => undefined,
  );
  queues.set(dir, done);
  void done.then(() => {
    if (queues.get(dir) === done) queues.delete(dir);
  });
  return result;
}

// ── writing ──────────────────────────────────────────────────────────────────────────

async function writeNow(dir: string, encodeNow: () => Uint8Array): Promise<SnapshotWrite> {
  const start = performance.now();
  const bytes = encodeNow();
  const file = path.join(dir, SNAPSHOT_FILE);
  const temp = path.join(dir, `${TEMP_PREFIX}${process.pid}-${randomUUID()}`);
  try {
    await removeTempFiles(dir);
    await writeDurably(temp, bytes);
    await fs.rename(temp, file);
    await syncDirectory(dir);
  } catch (error) {
    await removeIfPresent(temp);
    throw new ShumaError('SNAPSHOT_WRITE_FAILED', `writing ${file} failed: ${String(error)}`, causeOf(error));
  }
  return { bytes: bytes.length, ms: performance.now() - start };
}

function unwritable(error: unknown): ShumaError {
  if (!(error instanceof UnwritableSnapshot)) throw error;
  return new ShumaError(
    'SNAPSHOT_WRITE_FAILED',
    error.stage === 'encode' ? `the snapshot value cannot be encoded (${error.message})` : `the snapshot value would not read back: ${error.message}`,
  );
}

/** Temp files are ours alone (one writer per directory): any found are left by a crash. */
async function removeTempFiles(dir: string): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    if (name.startsWith(TEMP_PREFIX)) await removeIfPresent(path.join(dir, name));
  }
}

// ── reading ──────────────────────────────────────────────────────────────────────────

type Loaded = { kind: 'missing' } | { kind: 'bytes'; bytes: Uint8Array } | { kind: 'refused'; reason: string };
type Verdict = { ok: true; data: unknown; writtenAt: number } | { ok: false; reason: string };

async function readNow(dir: string, maxBytes: number): Promise<SnapshotRead> {
  const file = path.join(dir, SNAPSHOT_FILE);
  const loaded = await load(file, maxBytes);
  if (loaded.kind === 'missing') return { status: 'missing' };
  const verdict: Verdict = loaded.kind === 'bytes' ? decodeEnvelope(loaded.bytes) : { ok: false, reason: loaded.reason };
  if (verdict.ok) return { status: 'ok', data: verdict.data, writtenAt: verdict.writtenAt };
  return { status: 'corrupt', reason: verdict.reason, keptAs: await keepAside(file, 'corrupt') };
}

async function load(file: string, maxBytes: number): Promise<Loaded> {
  let handle: FileHandle;
  try {
    // O_NONBLOCK: a FIFO in the file's place must not block the open; it is refused below.
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return { kind: 'missing' };
    if (errnoOf(error) === 'ELOOP') return { kind: 'refused', reason: 'it is a symbolic link' };
    throw unreadable(file, error);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return { kind: 'refused', reason: 'it is not a regular file' };
    // Checked before reading, so that a huge file costs no memory.
    if (stat.size > maxBytes) return { kind: 'refused', reason: `it is ${stat.size} bytes, over the ${maxBytes}-byte cap` };
    const bytes = await handle.readFile();
    if (bytes.length > maxBytes) return { kind: 'refused', reason: `it grew past the ${maxBytes}-byte cap while read` };
    return { kind: 'bytes', bytes };
  } catch (error) {
    throw unreadable(file, error);
  } finally {
    await handle.close();
  }
}

function decodeEnvelope(bytes: Uint8Array): Verdict {
  if (bytes.length === 0) return { ok: false, reason: 'the file is empty' };
  const decoded = decodeUntrusted(bytes, SNAPSHOT_MAX_DEPTH);
  if (!decoded.ok) return { ok: false, reason: decoded.stage === 'refused' ? decoded.reason : `it does not decode: ${decoded.reason}` };
  return validateEnvelope(decoded.value);
}

function validateEnvelope(envelope: unknown): Verdict {
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) {
    return { ok: false, reason: 'it is not a snapshot envelope (a map of format, writtenAt and data)' };
  }
  const { format, writtenAt } = envelope as Record<string, unknown>;
  if (typeof format !== 'number' || !Number.isInteger(format) || format < 1) {
    return { ok: false, reason: `its format field (${describe(format)}) is not a snapshot format number` };
  }
  if (format > SNAPSHOT_FORMAT) {
    return {
      ok: false,
      reason: `it was written by a newer shuma, in snapshot format ${format}; this version reads formats up to ${SNAPSHOT_FORMAT}`,
    };
  }
  if (typeof writtenAt !== 'number' || !Number.isFinite(writtenAt)) {
    return { ok: false, reason: `its writtenAt field (${describe(writtenAt)}) is not a time` };
  }
  if (!Object.hasOwn(envelope, 'data')) return { ok: false, reason: 'it has no data field' };
  const { data, structures } = envelope as { data: unknown; structures?: unknown };
  if (format === 1) return { ok: true, data, writtenAt };
  if (!(data instanceof Uint8Array)) return { ok: false, reason: `its data field (${describe(data)}) is not the bytes of packed records` };
  const badShapes = checkShapes(structures);
  if (badShapes !== null) return { ok: false, reason: badShapes };
  // The envelope holds the data: what is in it nests one level deeper in the file.
  const decoded = decodeRecords(data, structures as Shape[], SNAPSHOT_MAX_DEPTH - 1);
  return decoded.ok ? { ok: true, data: decoded.value, writtenAt } : { ok: false, reason: decoded.reason };
}

/**
 * Renames a bad file to `shuma.snapshot.<label>-<time>[-n]`, never over an earlier one:
 * link(2) refuses an existing name, where rename(2) would replace it.
 */
async function keepAside(file: string, label: string): Promise<string> {
  const stamp = new Date().toISOString().replace(/:/g, '-'); // no ':' in file names: scp, Windows shares
  try {
    for (let n = 0; ; n++) {
      const aside = `${file}.${label}-${stamp}${n === 0 ? '' : `-${n}`}`;
      if (await moveToFreeName(file, aside)) return aside;
    }
  } catch (error) {
    throw new ShumaError('STATE_DIR_INVALID', `the corrupt snapshot ${file} could not be set aside: ${String(error)}`, causeOf(error));
  }
}

function unreadable(file: string, error: unknown): ShumaError {
  if (isShumaError(error)) return error;
  return new ShumaError('STATE_DIR_INVALID', `the snapshot ${file} cannot be read: ${String(error)}`, causeOf(error));
}

function causeOf(error: unknown): { cause: string } | Record<string, never> {
  const code = errnoOf(error);
  return code ? { cause: code } : {};
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : String(value).slice(0, 40);
}
