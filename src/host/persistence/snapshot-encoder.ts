// The snapshot file's bytes (format 2), written the way the state changes: a workspace whose
// record has not changed since the last write is not encoded again; most writes change a few.
//
// The file is one msgpack map, `{ format: 2, writtenAt, data, structures }`: `data` is a bin
// holding the state packed as records (snapshot-records.ts), `structures` the table of record
// shapes it refers to. The envelope is plain msgpack, so a reader of format 1 reads it and says
// the file is of a newer format instead of calling it corrupt. The writer keeps its table from
// one write to the next (ids never change while it is kept), so the bytes of a kept record stay
// good; every file carries the whole table, and is read with nothing else.
import { encodeInScratch } from '../../protocol/codec.js';
import { checkStructure, walkItem } from '../../protocol/msgpack-check.js';
import { samePlain } from '../../protocol/plain-equal.js';
import { BIN32_PLACEHOLDER, ByteBuilder, arrayHeader, mapHeader } from './byte-builder.js';
import type { PersistedWorkspace, SnapshotData } from './snapshot-data.js';
import { RecordPacker } from './snapshot-records.js';

/** The envelope's format number; bump it when `data`'s layout changes incompatibly. */
export const SNAPSHOT_FORMAT = 2;

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
 * The file's bytes are gathered in one buffer: a changed record is packed in msgpackr's
 * scratch space and copied in, a kept one is copied from the last file's bytes (which the
 * encoder holds: the records' bytes are held once, not once each). A buffer per record made
 * a cold write of 10,000 workspaces spend as much in the collector as in msgpackr.
 */
export class SnapshotEncoder {
  private kept = new Map<string, Kept>();
  private last: Uint8Array = new Uint8Array(0);
  private packer = new RecordPacker();
  /** Records encoded afresh by the last call (the rest were kept): the tests and bench read it. */
  encodedLast = 0;

  /**
   * The whole file's bytes for `data` (the runtime's state, or any value: its workspaces are
   * kept only in the state's shape), every part checked as readSnapshotFile will check it.
   * Throws UnwritableSnapshot.
   */
  encode(writtenAt: number, data: unknown): Uint8Array {
    if (this.packer.full) {
      // A full table holds shapes long gone: start a new one, and every record is packed again.
      this.packer = new RecordPacker();
      this.kept = new Map();
    }
    // The last file's size, and some: most writes change a few records, and fit in one block.
    const out = new ByteBuilder(this.last.length + (this.last.length >> 4) + 65536);
    out.push(mapHeader(4));
    plainPart(out, 'format');
    plainPart(out, SNAPSHOT_FORMAT);
    plainPart(out, 'writtenAt');
    plainPart(out, writtenAt);
    plainPart(out, 'data');
    const lengthAt = out.length + 1;
    out.push(BIN32_PLACEHOLDER);
    const dataStart = out.length;
    if (isStateShaped(data)) this.pushState(out, data);
    else this.packChecked(out, data, 1);
    out.patchUint32(lengthAt, out.length - dataStart);
    plainPart(out, 'structures');
    plainPart(out, this.packer.shapes);
    const bytes = out.bytes();
    this.last = bytes;
    return bytes;
  }

  private pushState(out: ByteBuilder, data: SnapshotData): void {
    const entries = Object.entries(data);
    out.push(mapHeader(entries.length));
    let workspaces = false;
    for (const [key, value] of entries) {
      plainPart(out, key);
      if (key === 'workspaces' && Array.isArray(value)) {
        this.pushWorkspaces(out, value as PersistedWorkspace[]);
        workspaces = true;
      } else this.packChecked(out, value, 2);
    }
    if (!workspaces) this.kept = new Map();
  }

  private pushWorkspaces(out: ByteBuilder, records: PersistedWorkspace[]): void {
    out.push(arrayHeader(records.length));
    const kept = new Map<string, Kept>();
    // Records to pack, one after the other since the last kept one: packed in one call.
    const run: PersistedWorkspace[] = [];
    const runParts: unknown[][] = [];
    let encoded = 0;
    for (const record of records) {
      const actorParts = partsOf(record.actor);
      const before = typeof record.id === 'string' ? this.kept.get(record.id) : undefined;
      if (before !== undefined && sameParts(before.actorParts, actorParts) && sameRest(before.rest, record)) {
        this.packRun(out, run, runParts, kept);
        const start = out.length;
        out.pushFrom(this.last, before.start, before.end);
        if (!kept.has(record.id)) kept.set(record.id, { rest: before.rest, actorParts, start, end: out.length });
      } else {
        run.push(record);
        runParts.push(actorParts);
        encoded++;
      }
    }
    this.packRun(out, run, runParts, kept);
    this.kept = kept;
    this.encodedLast = encoded;
  }

  /**
   * Packs `run` onto `out` (emptying it and `parts`, its records' actor parts) and keeps each
   * record's bytes. One pack call for many records: a cold write of 10,000 workspaces spent a
   * fifth of its time in msgpackr's per-call setup and the copies of a call per record. The
   * check walks each record in turn, which tells where each ends.
   */
  private packRun(out: ByteBuilder, run: PersistedWorkspace[], parts: unknown[][], kept: Map<string, Kept>): void {
    if (run.length === 0) return;
    const base = out.length;
    // Where each record ends, from the first one's start.
    const ends: number[] = [];
    this.packInto(out, run, (scratch, start, end) => {
      const view = new DataView(scratch.buffer, scratch.byteOffset, scratch.byteLength);
      let pos = start + arrayHeader(run.length).length;
      const first = pos;
      for (let i = 0; i < run.length; i++) {
        const next = walkItem(scratch, view, pos, end, SNAPSHOT_MAX_DEPTH - RECORD_NESTING, this.packer.shapes);
        if (typeof next === 'string') return next;
        ends.push(next - first);
        pos = next;
      }
      return first;
    });
    let start = base;
    run.forEach((record, i) => {
      const end = base + ends[i]!;
      // Only a workspace that is there now is kept (a duplicate id is simply encoded each time).
      if (typeof record.id === 'string' && !kept.has(record.id)) kept.set(record.id, { rest: restOf(record), actorParts: parts[i]!, start, end });
      start = end;
    });
    run.length = 0;
    parts.length = 0;
  }

  /** `value` packed as records onto `out`, and refused if readSnapshotFile would refuse it `nesting` levels down. */
  private packChecked(out: ByteBuilder, value: unknown, nesting: number): void {
    this.packInto(out, value, (scratch, start, end) => {
      const why = checkStructure(scratch.subarray(start, end), SNAPSHOT_MAX_DEPTH - nesting, this.packer.shapes);
      return why ?? start;
    });
  }

  /**
   * Packs `value` and pushes its bytes from the offset `check` returns, or throws why `check`
   * refuses them: never write what readSnapshotFile would refuse, that would lose the state at
   * the next start.
   */
  private packInto(out: ByteBuilder, value: unknown, check: (scratch: Uint8Array, start: number, end: number) => number | string): void {
    let checked: number | string;
    try {
      checked = this.packer.packInScratch(value, (scratch, start, end) => {
        const from = check(scratch, start, end);
        if (typeof from === 'number') out.push(scratch.subarray(from, end));
        return from;
      });
    } catch (error) {
      throw new UnwritableSnapshot(String(error), 'encode');
    }
    if (typeof checked === 'string') throw new UnwritableSnapshot(checked, 'check');
  }
}

/** The state as the runtime collects it: the only value whose workspaces are kept. */
function isStateShaped(data: unknown): data is SnapshotData {
  return typeof data === 'object' && data !== null && Object.getPrototypeOf(data) === Object.prototype && Array.isArray((data as { workspaces?: unknown }).workspaces);
}

/** One of the envelope's own parts (its keys, the format, the time, the table), plain msgpack. */
function plainPart(out: ByteBuilder, value: unknown): void {
  encodeInScratch(value, (scratch, start, end) => out.push(scratch.subarray(start, end)));
}

function partsOf(actor: unknown): unknown[] {
  if (typeof actor !== 'object' || actor === null) return [actor];
  const children = (actor as { children?: unknown }).children;
  const parts: unknown[] = [actor, children];
  if (typeof children !== 'object' || children === null) return parts;
  // for-in, not Object.entries: no array per child (this runs for every workspace at every write).
  for (const key in children) {
    if (!Object.hasOwn(children, key)) continue;
    const child = (children as Record<string, unknown>)[key];
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
  for (const key in fields) if (key !== 'actor' && Object.hasOwn(fields, key)) rest[key] = copyPlain(fields[key]);
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
  for (const key in value) if (Object.hasOwn(value, key)) out[key] = copyPlain((value as Record<string, unknown>)[key]);
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
