// The snapshot file's bytes (format 2), written the way the state changes: a workspace whose
// record has not changed since the last write is not encoded again; most writes change a few.
//
// The file is one msgpack map, `{ format: 2, writtenAt, data, structures }`: `data` is a bin
// holding the state packed as records (snapshot-records.ts), `structures` the table of record
// shapes it refers to. The envelope is plain msgpack, so a reader of format 1 reads it and says
// the file is of a newer format instead of calling it corrupt. The process's table is kept from
// one write to the next (ids never change while it is kept), so the bytes of a kept record stay
// good; every file carries the whole table, and is read with nothing else.
//
// What changed is told, not found: collect.ts hands each workspace's record with the workspace's
// change count (registry.ts `changes`, bumped by everything that touches the workspace), and a
// record whose count is the one its kept bytes were packed at is not looked into at all. Finding
// changes by comparing each record with a copy of the last (the way before) cost a cold write of
// 10,000 workspaces a third more than the pack itself, in copies made for the next write.
import { encodeInScratch } from '../../protocol/codec.js';
import { checkStructure, walkItem } from '../../protocol/msgpack-check.js';
import { BIN32_PLACEHOLDER, ByteBuilder, arrayHeader, mapHeader } from './byte-builder.js';
import { KeptRecords } from './kept-records.js';
import type { PersistedWorkspace, SnapshotData } from './snapshot-data.js';
import { packRecords, shapeTable, shapeTableFull, startNewTable, type Shape } from './snapshot-records.js';

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

/** Each record collect.ts made from the registry, with its workspace's change count then. */
const changeCounts = new WeakMap<PersistedWorkspace, number>();

/**
 * `record`, made now from a workspace whose change count is `changes`: a later write keeps its
 * bytes while the count stays. A record not given here (a copy amended after collect, any
 * value written by writeSnapshotFile) is packed at every write.
 */
export function counted(record: PersistedWorkspace, changes: number): PersistedWorkspace {
  changeCounts.set(record, changes);
  return record;
}

/**
 * A workspace collect.ts did not make a record of: the encoder said it keeps its bytes at this
 * change count (`keeps`). Should they be gone by the time it encodes (a new table of shapes),
 * `build` makes the record then.
 */
export class UnchangedWorkspace {
  constructor(
    readonly id: string,
    readonly changes: number,
    readonly placement: PersistedWorkspace['placement'],
    readonly build: () => PersistedWorkspace,
  ) {}
}

/** The state as collect.ts hands it for a write: each workspace a record, or unchanged since the last write. */
export interface CollectedState extends Omit<SnapshotData, 'workspaces'> {
  workspaces: Array<PersistedWorkspace | UnchangedWorkspace>;
}

/**
 * Keeps each workspace record's bytes from one write to the next, while its change count stays.
 *
 * The file's bytes are gathered in one buffer: a changed record is packed in msgpackr's
 * scratch space and copied in, a kept one is copied from the last file's bytes (which the
 * encoder holds: the records' bytes are held once, not once each). A buffer per record made
 * a cold write of 10,000 workspaces spend as much in the collector as in msgpackr.
 */
export class SnapshotEncoder {
  private kept = new KeptRecords();
  private last: Uint8Array = new Uint8Array(0);
  /** The process's table of shapes that the kept bytes refer to (snapshot-records.ts). */
  private table: Shape[] | null = null;
  /** Records encoded afresh by the last call (the rest were kept): the tests and bench read it. */
  encodedLast = 0;

  /** Whether the next write keeps the bytes of workspace `id` at change count `changes` (collect.ts then makes no record). */
  keeps(id: string, changes: number): boolean {
    if (this.table !== shapeTable() || shapeTableFull()) return false;
    const at = this.kept.find(id);
    return at >= 0 && this.kept.changesAt(at) === changes;
  }

  /**
   * The whole file's bytes for `data` (the runtime's state, or any value: its workspaces are
   * kept only in the state's shape), every part checked as readSnapshotFile will check it.
   * Throws UnwritableSnapshot.
   */
  encode(writtenAt: number, data: unknown): Uint8Array {
    // A full table holds shapes long gone: a new one, and every record is packed again.
    if (shapeTableFull()) startNewTable();
    // Another writer may have started the new one: kept bytes name ids of the old.
    if (this.table !== shapeTable()) {
      this.table = shapeTable();
      this.kept = new KeptRecords();
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
    plainPart(out, this.table);
    const bytes = out.bytes();
    this.last = bytes;
    // collect.ts asks keeps() next, workspace after workspace, in the order just written.
    this.kept.rewind();
    return bytes;
  }

  private pushState(out: ByteBuilder, data: CollectedState): void {
    const entries = Object.entries(data);
    out.push(mapHeader(entries.length));
    let workspaces = false;
    for (const [key, value] of entries) {
      plainPart(out, key);
      if (key === 'workspaces' && Array.isArray(value)) {
        this.pushWorkspaces(out, value as CollectedState['workspaces']);
        workspaces = true;
      } else this.packChecked(out, value, 2);
    }
    if (!workspaces) this.kept = new KeptRecords();
  }

  private pushWorkspaces(out: ByteBuilder, records: CollectedState['workspaces']): void {
    out.push(arrayHeader(records.length));
    const last = this.kept;
    last.rewind();
    const kept = new KeptRecords();
    // Records to pack, one after the other since the last kept one, packed in one call; each
    // with its change count (looked up once: a WeakMap lookup is not free at 10,000).
    const run: PersistedWorkspace[] = [];
    const runCounts: Array<number | undefined> = [];
    let encoded = 0;
    for (const item of records) {
      const unchanged = item instanceof UnchangedWorkspace;
      const changes = unchanged ? item.changes : changeCounts.get(item);
      const at = changes === undefined ? -1 : last.find(item.id);
      if (at >= 0 && last.changesAt(at) === changes && last.placementAt(at) === placementOf(item)) {
        this.packRun(out, run, runCounts, kept);
        const start = out.length;
        out.pushFrom(this.last, last.startAt(at), last.endAt(at));
        kept.add(item.id, changes!, last.placementAt(at), start, out.length);
      } else {
        run.push(unchanged ? counted(item.build(), item.changes) : item);
        runCounts.push(changes);
        encoded++;
      }
    }
    this.packRun(out, run, runCounts, kept);
    this.kept = kept;
    this.encodedLast = encoded;
  }

  /**
   * Packs `run` onto `out` (emptying it and `counts`, its records' change counts) and keeps the
   * bytes of each record that has a count. One pack call for many records: a cold write of
   * 10,000 workspaces spent a fifth of its time in msgpackr's per-call setup and the copies of
   * a call per record. The check walks each record in turn, which tells where each ends.
   */
  private packRun(out: ByteBuilder, run: PersistedWorkspace[], counts: Array<number | undefined>, kept: KeptRecords): void {
    if (run.length === 0) return;
    const start = out.length;
    this.packInto(out, run, (scratch, from, end) => {
      const view = new DataView(scratch.buffer, scratch.byteOffset, scratch.byteLength);
      let pos = from + arrayHeader(run.length).length;
      const first = pos;
      const base = start - first;
      for (let i = 0; i < run.length; i++) {
        const next = walkItem(scratch, view, pos, end, SNAPSHOT_MAX_DEPTH - RECORD_NESTING, this.table!);
        if (typeof next === 'string') return next;
        const changes = counts[i];
        // Where it will be in the file once pushed: `base` from here.
        if (changes !== undefined) kept.add(run[i]!.id, changes, placementOf(run[i]!), base + pos, base + next);
        pos = next;
      }
      return first;
    });
    run.length = 0;
    counts.length = 0;
  }

  /** `value` packed as records onto `out`, and refused if readSnapshotFile would refuse it `nesting` levels down. */
  private packChecked(out: ByteBuilder, value: unknown, nesting: number): void {
    this.packInto(out, value, (scratch, start, end) => {
      const why = checkStructure(scratch.subarray(start, end), SNAPSHOT_MAX_DEPTH - nesting, this.table!);
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
      checked = packRecords(value, (scratch, start, end) => {
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

/** A placement other than this machine's, as it is now (compared with the one its kept bytes hold). */
function placementOf(record: { placement?: PersistedWorkspace['placement'] }): string | undefined {
  return record.placement === undefined ? undefined : JSON.stringify(record.placement);
}
