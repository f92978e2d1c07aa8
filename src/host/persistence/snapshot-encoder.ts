// The snapshot file's bytes, written the way the state changes: a workspace whose record has not
// changed since the last write is not encoded again. Encoding 10,000 workspaces with msgpackr
// and checking the bytes took longer than JSON.stringify of them; most writes change a few.
//
// The bytes are exactly those of encoding the whole envelope at once (plain msgpack, format 1):
// the envelope and `data` maps are written here, every value in them by the one codec, and the
// `workspaces` array from each record's own encoding, kept from the last write when its record
// is the same. So a file written either way reads the same, by this version and older ones.
import { encode } from '../../protocol/codec.js';
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
  bytes: Uint8Array;
}

/**
 * Keeps each workspace record's bytes from one write to the next. A record handed to it is not
 * changed in place afterwards: a change is a new record (collect.ts makes new ones at every
 * write; shutdown-exits.ts replaces the ones it amends).
 */
export class SnapshotEncoder {
  private kept = new Map<string, Kept>();
  /** Records encoded afresh by the last call (the rest were kept): the tests and bench read it. */
  encodedLast = 0;

  /**
   * The whole file's bytes for `{ format, writtenAt, data }`, every part checked as
   * readSnapshotFile will check it. Throws UnwritableSnapshot.
   */
  encodeEnvelope(envelope: { format: number; writtenAt: number; data: SnapshotData }): Uint8Array {
    const parts: Uint8Array[] = [mapHeader(3)];
    for (const [key, value] of Object.entries(envelope)) {
      parts.push(encodeChecked(key, 1));
      if (key === 'data') this.pushData(parts, value as SnapshotData);
      else parts.push(encodeChecked(value, 1));
    }
    return concat(parts);
  }

  private pushData(parts: Uint8Array[], data: SnapshotData): void {
    const entries = Object.entries(data);
    parts.push(mapHeader(entries.length));
    for (const [key, value] of entries) {
      parts.push(encodeChecked(key, 2));
      if (key === 'workspaces' && Array.isArray(value)) this.pushWorkspaces(parts, value as PersistedWorkspace[]);
      else parts.push(encodeChecked(value, 2));
    }
  }

  private pushWorkspaces(parts: Uint8Array[], records: PersistedWorkspace[]): void {
    parts.push(arrayHeader(records.length));
    const kept = new Map<string, Kept>();
    let encoded = 0;
    for (const record of records) {
      const actorParts = partsOf(record.actor);
      const before = typeof record.id === 'string' ? this.kept.get(record.id) : undefined;
      let entry: Kept;
      if (before !== undefined && sameParts(before.actorParts, actorParts) && sameRest(before.rest, record)) {
        entry = { rest: before.rest, actorParts, bytes: before.bytes };
      } else {
        const bytes = encodeChecked(record, RECORD_NESTING);
        entry = { rest: restOf(record), actorParts, bytes };
        encoded++;
      }
      parts.push(entry.bytes);
      // Only a workspace that is there now is kept (a duplicate id is simply encoded each time).
      if (typeof record.id === 'string' && !kept.has(record.id)) kept.set(record.id, entry);
    }
    this.kept = kept;
    this.encodedLast = encoded;
  }
}

/** `value` encoded, and refused if readSnapshotFile would refuse it `nesting` levels down. */
function encodeChecked(value: unknown, nesting: number): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = encode(value);
  } catch (error) {
    throw new UnwritableSnapshot(String(error), 'encode');
  }
  // Never write what readSnapshotFile would refuse: that would lose the state at the next start.
  const refused = checkStructure(bytes, SNAPSHOT_MAX_DEPTH - nesting);
  if (refused !== null) throw new UnwritableSnapshot(refused, 'check');
  return bytes;
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
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) if (key !== 'actor') rest[key] = value;
  return structuredClone(rest);
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

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
