// The snapshot file's bytes, written the way the state changes: a workspace whose record has not
// changed since the last write is not encoded again. Encoding 10,000 workspaces with msgpackr
// and checking the bytes took longer than JSON.stringify of them; most writes change a few.
//
// The bytes are exactly those of encoding the whole envelope at once (plain msgpack, format 1):
// the envelope and `data` maps are written here, every value in them by the one codec, and the
// `workspaces` array from each record's own encoding, kept from the last write when its record
// is the same. So a file written either way reads the same, by this version and older ones.
import { encodeInScratch } from '../../protocol/codec.js';
import { checkStructure } from '../../protocol/msgpack-check.js';
import { samePlain } from '../../protocol/plain-equal.js';
import type { PersistedWorkspace, SnapshotData } from './snapshot-data.js';

/** Why a value cannot go into the snapshot: the message says which. */
export class UnwritableSnapshot extends Error {
  constructor(
    message: string,
    /** `encode`: msgpackr refused it; `check`: it would not read back. */
    readonly stage: 'encode' | 'check',
  ) {
    super(message);
  }
}

/** Deepest nesting of maps and arrays a snapshot may hold (msgpackr overflows the stack past ~1,000). */
export const SNAPSHOT_MAX_DEPTH = 512;

/** Maps and arrays around a workspace record in the file: the envelope, `data`, `workspaces`. */
const RECORD_NESTING = 3;

interface Kept {
  /**
   * The record but its actor, copied when it was encoded: its parts are the runtime's own
   * objects (the spec, the placement, whose nodes a Slurm job updates in place), so the record
   * itself would compare equal to its own later changes.
   */
  rest: Record<string, unknown>;
  /**
   * The actor's parts by identity. Persisted snapshots are replaced, never changed in place on
   * the main thread (host/core/shared-context.ts), except a child's entry whose `snapshot` is
   * replaced (a `persistedChild` message): those entries are compared one level down.
   */
  actorParts: unknown[];
  /** Where its bytes are in the last file's bytes. */
  start: number;
  end: number;
}

/**
 * Keeps each workspace record's bytes from one write to the next. A record handed to it is not
 * changed in place afterwards: a change is a new record (collect.ts makes new ones at every
 * write; shutdown-exits.ts replaces the ones it amends).
 *
 * The file's bytes are gathered in one buffer: a changed record is encoded in the codec's
 * scratch space and copied in, a kept one is copied from the last file's bytes (which the
 * encoder holds: the records' bytes are held once, not once each). A buffer per record made
 * a cold write of 10,000 workspaces spend as much in the collector as in msgpackr.
 */
export class SnapshotEncoder {
  private kept = new Map<string, Kept>();
  private last: Uint8Array = new Uint8Array(0);
  /** Records encoded afresh by the last call (the rest were kept): the tests and bench read it. */
  encodedLast = 0;

  /**
   * The whole file's bytes for `{ format, writtenAt, data }`, every part checked as
   * readSnapshotFile will check it. Throws UnwritableSnapshot.
   */
  encodeEnvelope(envelope: { format: number; writtenAt: number; data: SnapshotData }): Uint8Array {
    // The last file's size, and some: most writes change a few records, and fit in one block.
    const out = new ByteBuilder(this.last.length + (this.last.length >> 4) + 65536);
    out.push(mapHeader(3));
    for (const [key, value] of Object.entries(envelope)) {
      encodeChecked(out, key, 1);
      if (key === 'data') this.pushData(out, value as SnapshotData);
      else encodeChecked(out, value, 1);
    }
    const bytes = out.bytes();
    this.last = bytes;
    return bytes;
  }

  private pushData(out: ByteBuilder, data: SnapshotData): void {
    const entries = Object.entries(data);
    out.push(mapHeader(entries.length));
    for (const [key, value] of entries) {
      encodeChecked(out, key, 2);
      if (key === 'workspaces' && Array.isArray(value)) this.pushWorkspaces(out, value as PersistedWorkspace[]);
      else encodeChecked(out, value, 2);
    }
  }

  private pushWorkspaces(out: ByteBuilder, records: PersistedWorkspace[]): void {
    out.push(arrayHeader(records.length));
    const kept = new Map<string, Kept>();
    let encoded = 0;
    for (const record of records) {
      const actorParts = partsOf(record.actor);
      const before = typeof record.id === 'string' ? this.kept.get(record.id) : undefined;
      const start = out.length;
      let rest: Record<string, unknown>;
      if (before !== undefined && sameParts(before.actorParts, actorParts) && sameRest(before.rest, record)) {
        out.pushFrom(this.last, before.start, before.end);
        rest = before.rest;
      } else {
        encodeChecked(out, record, RECORD_NESTING);
        rest = restOf(record);
        encoded++;
      }
      // Only a workspace that is there now is kept (a duplicate id is simply encoded each time).
      if (typeof record.id === 'string' && !kept.has(record.id)) kept.set(record.id, { rest, actorParts, start, end: out.length });
    }
    this.kept = kept;
    this.encodedLast = encoded;
  }
}

/** `value` encoded onto `out`, and refused if readSnapshotFile would refuse it `nesting` levels down. */
function encodeChecked(out: ByteBuilder, value: unknown, nesting: number): void {
  let refused: string | null;
  try {
    refused = encodeInScratch(value, (scratch, start, end) => {
      const bytes = scratch.subarray(start, end);
      // Never write what readSnapshotFile would refuse: that would lose the state at the next start.
      const why = checkStructure(bytes, SNAPSHOT_MAX_DEPTH - nesting);
      if (why === null) out.push(bytes);
      return why;
    });
  } catch (error) {
    throw new UnwritableSnapshot(String(error), 'encode');
  }
  if (refused !== null) throw new UnwritableSnapshot(refused, 'check');
}

/**
 * What the file's bytes are gathered in: blocks filled one after the other (never copied to
 * grow), made one buffer at the end unless one block holds them all. Not zero-filled: every
 * byte handed out was written.
 */
class ByteBuilder {
  private readonly full: Buffer[] = [];
  private block: Buffer;
  private at = 0;
  /** Bytes gathered so far: the offset of the next byte in the whole. */
  length = 0;

  constructor(capacity: number) {
    this.block = Buffer.allocUnsafeSlow(capacity);
  }

  push(bytes: Uint8Array): void {
    let from = 0;
    while (from < bytes.length) {
      if (this.at === this.block.length) this.nextBlock(bytes.length - from);
      const take = Math.min(bytes.length - from, this.block.length - this.at);
      this.block.set(from === 0 && take === bytes.length ? bytes : bytes.subarray(from, from + take), this.at);
      this.at += take;
      from += take;
    }
    this.length += bytes.length;
  }

  pushFrom(source: Uint8Array, start: number, end: number): void {
    this.push(source.subarray(start, end));
  }

  bytes(): Uint8Array {
    if (this.full.length === 0) return plain(this.block, this.at);
    const whole = Buffer.allocUnsafeSlow(this.length);
    let offset = 0;
    for (const block of this.full) {
      block.copy(whole, offset);
      offset += block.length;
    }
    this.block.copy(whole, offset, 0, this.at);
    return plain(whole, this.length);
  }

  private nextBlock(wanted: number): void {
    this.full.push(this.block);
    this.block = Buffer.allocUnsafeSlow(Math.max(wanted, this.length));
    this.at = 0;
  }
}

/** The first `length` bytes of `buffer` as a plain Uint8Array, as encode() gives (not a Buffer). */
function plain(buffer: Buffer, length: number): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
}

function partsOf(actor: unknown): unknown[] {
  const parts: unknown[] = [actor];
  if (typeof actor !== 'object' || actor === null) return parts;
  const children = (actor as { children?: unknown }).children;
  parts.push(children);
  if (typeof children !== 'object' || children === null) return parts;
  for (const [key, child] of Object.entries(children)) {
    parts.push(key, child, typeof child === 'object' && child !== null ? (child as { snapshot?: unknown }).snapshot : undefined);
  }
  return parts;
}

function sameParts(a: unknown[], b: unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A copy of everything of the record but its actor (which is compared by its parts). */
function restOf(record: PersistedWorkspace): Record<string, unknown> {
  const fields = record as unknown as Record<string, unknown>;
  const rest: Record<string, unknown> = {};
  for (const key of Object.keys(fields)) if (key !== 'actor') rest[key] = copyPlain(fields[key]);
  return rest;
}

/** Stands for a value that is not plain data in a kept copy: it equals nothing, so its record is always encoded. */
const NOT_PLAIN = Symbol('not plain data');

/**
 * A deep copy of plain data, for samePlain to compare with later. structuredClone took a fifth
 * of a cold write of 10,000 workspaces; this is several times faster on small records. What is
 * not plain (a Date, a Map) is not copied but marked: the record is then encoded every time, as
 * samePlain would judge it anyway.
 */
function copyPlain(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = copyPlain(value[i]);
    return out;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return NOT_PLAIN;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = copyPlain((value as Record<string, unknown>)[key]);
  return out;
}

/** The record, its actor aside, equals the copy kept of the last one. */
function sameRest(kept: Record<string, unknown>, record: PersistedWorkspace): boolean {
  const fields = record as unknown as Record<string, unknown>;
  const keys = Object.keys(fields);
  if (keys.length !== Object.keys(kept).length + 1 || !Object.hasOwn(fields, 'actor')) return false;
  for (const key of keys) {
    if (key === 'actor') continue;
    if (!Object.hasOwn(kept, key) || !samePlain(kept[key], fields[key])) return false;
  }
  return true;
}

/** map 16 as msgpackr writes every map (it fills the count in afterwards), so the bytes are its own. */
function mapHeader(count: number): Uint8Array {
  if (count < 0x10000) return Uint8Array.of(0xde, count >> 8, count & 0xff);
  return Uint8Array.of(0xdf, count >>> 24, (count >> 16) & 0xff, (count >> 8) & 0xff, count & 0xff);
}

function arrayHeader(count: number): Uint8Array {
  if (count < 16) return Uint8Array.of(0x90 | count);
  if (count < 0x10000) return Uint8Array.of(0xdc, count >> 8, count & 0xff);
  return Uint8Array.of(0xdd, count >>> 24, (count >> 16) & 0xff, (count >> 8) & 0xff, count & 0xff);
}
