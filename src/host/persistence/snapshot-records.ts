// The snapshot file's msgpackr configuration for its data (format 2): records with a shape table
// of the file's own. An object is written as a record — the id of its shape (its list of keys),
// then its values — so the keys of the thousands of objects of one shape (every workspace's actor,
// spec, commands…) are not written again and again: packing 10,000 workspaces took a third less
// time than JSON.stringify of them, where plain maps took a third more, and the file is half
// the size. The table travels in the file, beside the data (snapshot-file.ts): a file is read with
// its own table alone, never with anything a process kept in memory.
//
// Otherwise the options are the codec's (protocol/codec.ts), the one place they are set.
import { Packr, REUSE_BUFFER_MODE, RESET_BUFFER_MODE, Unpackr } from 'msgpackr';
import { MSGPACK_OPTIONS } from '../../protocol/codec.js';
import { checkStructure } from '../../protocol/msgpack-check.js';

/**
 * Shapes a table holds at most. msgpackr writes ids past the first 32 in two bytes, up to 8,160;
 * a workspace brings a few dozen shapes, most shared by all. Past this many (maps of keys that
 * differ from one workspace to the next, such as environments), further objects are written as
 * plain maps, and the writer starts a new table at its next write (snapshot-encoder.ts).
 */
export const MAX_SHAPES = 4096;

/** A shape: the keys of a record, in order. */
export type Shape = string[];

/** A table of shapes, as msgpackr keeps it: its record ids, its transitions, on the array. */
type Table = Shape[] & { sharedLength?: number };

/**
 * The process's one table of shapes, shared by every writer (one per state directory): ids,
 * once given, never change while it is kept, so each writer's kept bytes stay good, and a file
 * carries the whole table (shapes of another writer's records too: key names, never values).
 * A table per writer was dropped with its writer, and V8 then threw away msgpackr's optimized
 * code that held the table's objects ("weak objects" at the next collection), compiling it
 * again on a background thread at every write with a new table: 30 ms of CPU, most of a
 * 1,000-workspace write. Replaced by an empty one once full (startNewTable).
 */
let table: Table = [];

/**
 * The one packer of every writer. A Packr per writer made the first writes of each new one run
 * unoptimized code: V8 drops the code specialised to the first instance's closures once a
 * second exists, and a cold write took twice as long.
 */
const packr = new Packr({
  ...MSGPACK_OPTIONS,
  structures: table,
  maxSharedStructures: MAX_SHAPES,
  // Never a shape defined inline in the data (msgpackr's own, per-call structures), which the
  // reader's check refuses: once the table is full, objects are written as maps.
  useRecords: () => (table.sharedLength ?? 0) < MAX_SHAPES,
});

/** The table records are packed with now: what a writer's kept bytes refer to, while it stays the one. */
export function shapeTable(): Shape[] {
  return table;
}

/** The table is full: shapes long gone hold its ids, past which objects are written as maps. */
export function shapeTableFull(): boolean {
  return table.length >= MAX_SHAPES;
}

/** An empty table from now on: every writer packs its records again (their bytes name the old one's ids). */
export function startNewTable(): void {
  table = [];
  (packr as unknown as { structures: Table }).structures = table;
}

/**
 * Packs `value` as records of the table, adding the shapes it lacks, into msgpackr's scratch
 * space: `use` sees its bytes at `scratch[start, end)` and must copy what it keeps before it
 * returns (the next pack reuses the space).
 */
export function packRecords<T>(value: unknown, use: (scratch: Uint8Array, start: number, end: number) => T): T {
  const scratch: Uint8Array = packr.pack(value, REUSE_BUFFER_MODE | RESET_BUFFER_MODE);
  const { start, end } = scratch as unknown as { start: number; end: number };
  return use(scratch, start, end);
}

/** Why the shape table read from a file cannot be used, or null. */
export function checkShapes(shapes: unknown): string | null {
  if (!Array.isArray(shapes)) return 'its structures field is not a list';
  if (shapes.length > MAX_SHAPES) return `it has ${shapes.length} record shapes, over the ${MAX_SHAPES} this version reads`;
  for (const [i, shape] of shapes.entries()) {
    if (!Array.isArray(shape) || !shape.every((key) => typeof key === 'string')) return `record shape ${i} is not a list of keys`;
  }
  return null;
}

/** The decoder of the last table read, and that table. */
let lastRead: { shapes: Shape[]; unpackr: Unpackr } | null = null;

/**
 * A decoder of `shapes` alone: the one of the last file read when its table was the same,
 * key for key (the bytes, checked against this file's table, name the same records in both),
 * else a new one, which msgpackr gives the table through getStructures (marking the shapes past
 * the 32nd as read with two-byte ids). A new decoder per file made V8 throw away msgpackr's
 * optimized reader at the next collection ("weak objects": the last decoder's table gone) and
 * compile it again: ~7 ms of a 1,000-workspace read, half of it.
 */
function decoderFor(shapes: Shape[]): Unpackr {
  if (lastRead !== null && sameShapes(lastRead.shapes, shapes)) return lastRead.unpackr;
  const unpackr = new Unpackr({ ...MSGPACK_OPTIONS, useRecords: true, getStructures: () => shapes });
  lastRead = { shapes, unpackr };
  return unpackr;
}

function sameShapes(a: Shape[], b: Shape[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.length !== y.length) return false;
    for (let j = 0; j < x.length; j++) if (x[j] !== y[j]) return false;
  }
  return true;
}

export type RecordsDecode = { ok: true; value: unknown } | { ok: false; reason: string };

/**
 * Decodes data packed by packRecords, with the table of shapes it was packed with (checked by
 * checkShapes). The bytes are untrusted: walked first by the restricted check, which knows the
 * records by the table, as any snapshot bytes are.
 */
export function decodeRecords(bytes: Uint8Array, shapes: Shape[], maxDepth: number): RecordsDecode {
  const refused = checkStructure(bytes, maxDepth, shapes);
  if (refused !== null) return { ok: false, reason: refused };
  try {
    return { ok: true, value: decoderFor(shapes).unpack(bytes) };
  } catch (error) {
    // Whatever msgpackr kept of a file it could not decode is not used again.
    lastRead = null;
    return { ok: false, reason: `it does not decode: ${error instanceof Error ? error.message : String(error)}` };
  }
}
