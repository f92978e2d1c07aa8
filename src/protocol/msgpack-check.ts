// The restricted pre-decode walk for msgpack from outside the process (a snapshot file, a
// control-socket frame). msgpackr's Unpackr decodes its record and structured-clone extensions
// (and Set, RegExp, Error, typed arrays…) whatever its options, and recurses on nesting, so
// untrusted bytes are walked here first, without recursion: lengths within the buffer, nothing
// after the value, a nesting cap, and no extension but the two our encoder writes (undefined
// and Date). Only bytes this accepts are handed to msgpackr.

/** Extension types our encoder writes: 0 (msgpackr's `undefined`) and -1 (timestamp → Date). */
const ALLOWED_EXTENSIONS = new Set([0x00, 0xff]);
const EXTENSION_NAMES = new Map([
  [0x72, "msgpackr's record extension"],
  [0x69, "msgpackr's structured-clone reference"],
  [0x70, "msgpackr's structured-clone pointer"],
  [0x73, 'a Set'],
  [0x74, 'a typed array'],
  [0x78, 'a RegExp'],
  [0x65, 'an Error'],
  [0x42, 'a BigInt'],
  [0x62, "msgpackr's bundled strings"],
]);

/**
 * The record shapes a snapshot in format 2 refers to (msgpackr records with shared structures,
 * host/persistence/snapshot-records.ts): shape i, a list of keys, is record id 0x40 + i, and a
 * record is its id followed by one value per key. Ids 0x40–0x5f take one byte; later ones two
 * (0x60–0x7f, then the high part), as msgpackr writes them with more than 32 shared structures.
 */
export type RecordShapes = ReadonlyArray<{ readonly length: number } | undefined>;

/** The head of one item: how many bytes it spans (its children excluded), how many children. */
interface Head {
  size: number;
  children: number;
}

/**
 * Walks the msgpack items of `bytes` without recursion. Returns why they are refused, or null:
 * an item running past the end, bytes after the value, nesting deeper than `maxDepth`, the
 * unused byte 0xc1, an extension type other than undefined and Date.
 */
export function checkStructure(bytes: Uint8Array, maxDepth: number, shapes?: RecordShapes): string | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = walkItem(bytes, view, 0, bytes.length, maxDepth, shapes);
  if (typeof end === 'string') return end;
  return end === bytes.length ? null : `${bytes.length - end} bytes of garbage follow the value`;
}

const head: Head = { size: 0, children: 0 };
const enclosing: number[] = []; // items still to read in each enclosing container

/**
 * Walks the one item at `pos` of `bytes` (`view` over the same bytes), which must end by `end`,
 * as checkStructure walks: returns where it ends, or why it is refused. For a writer that
 * checks many values packed one after the other (the snapshot file's workspaces), and learns
 * where each ends.
 */
export function walkItem(bytes: Uint8Array, view: DataView, pos: number, end: number, maxDepth: number, shapes?: RecordShapes): number | string {
  enclosing.length = 0;
  let left = 1; // items still to read at this level
  for (;;) {
    while (left === 0) {
      if (enclosing.length === 0) return pos;
      left = enclosing.pop()!;
    }
    left--;
    const refused = pos < end ? readHead(bytes, view, pos, head, shapes) : truncated(pos);
    if (refused !== null) return refused;
    if (pos + head.size > end) return truncated(pos);
    pos += head.size;
    if (head.children > 0) {
      if (enclosing.length >= maxDepth) return `maps and arrays nest deeper than ${maxDepth} levels`;
      enclosing.push(left);
      left = head.children;
    }
  }
}

function truncated(pos: number): string {
  return `it ends in the middle of an item (at byte ${pos}): truncated`;
}

/** Fills `head` for the item at `pos`; returns why it is refused, or null. */
function readHead(bytes: Uint8Array, view: DataView, pos: number, head: Head, shapes: RecordShapes | undefined): string | null {
  const lead = bytes[pos]!;
  head.children = 0;
  head.size = 1;
  if (lead <= 0x3f || lead >= 0xe0) return null; // fixint
  if (lead <= 0x7f) return shapes === undefined ? null : record(bytes, pos, shapes, head); // fixint, or a record
  if (lead <= 0x8f) return container(head, 1, 2 * (lead & 0x0f)); // fixmap
  if (lead <= 0x9f) return container(head, 1, lead & 0x0f); // fixarray
  if (lead <= 0xbf) return scalar(head, 1 + (lead & 0x1f)); // fixstr
  switch (lead) {
    case 0xc0: case 0xc2: case 0xc3: return null; // nil, false, true
    case 0xc1: return `byte 0xc1 at ${pos}, which msgpack never uses`;
    case 0xc4: case 0xd9: return sized(view, pos, 1, head); // bin 8, str 8
    case 0xc5: case 0xda: return sized(view, pos, 2, head);
    case 0xc6: case 0xdb: return sized(view, pos, 4, head);
    case 0xc7: return extension(view, pos, 1, head); // ext 8
    case 0xc8: return extension(view, pos, 2, head);
    case 0xc9: return extension(view, pos, 4, head);
    case 0xca: return scalar(head, 5); // float 32
    case 0xcb: return scalar(head, 9);
    case 0xcc: case 0xd0: return scalar(head, 2); // (u)int 8
    case 0xcd: case 0xd1: return scalar(head, 3);
    case 0xce: case 0xd2: return scalar(head, 5);
    case 0xcf: case 0xd3: return scalar(head, 9);
    case 0xd4: return fixedExtension(view, pos, 1, head);
    case 0xd5: return fixedExtension(view, pos, 2, head);
    case 0xd6: return fixedExtension(view, pos, 4, head);
    case 0xd7: return fixedExtension(view, pos, 8, head);
    case 0xd8: return fixedExtension(view, pos, 16, head);
    case 0xdc: return counted(view, pos, 2, 1, head); // array 16
    case 0xdd: return counted(view, pos, 4, 1, head);
    case 0xde: return counted(view, pos, 2, 2, head); // map 16
    default: return counted(view, pos, 4, 2, head); // 0xdf, map 32
  }
}

/** A record: its id (one byte, or two from 0x60 on), then as many values as its shape has keys. */
function record(bytes: Uint8Array, pos: number, shapes: RecordShapes, head: Head): string | null {
  const lead = bytes[pos]!;
  let id = lead - 0x40;
  if (lead >= 0x60) {
    if (pos + 1 >= bytes.length) return truncated(pos);
    // msgpackr reads the second byte only when the shape of the first byte's own id exists.
    if (shapes[id] === undefined) return `record id ${id} at byte ${pos} has no shape in the file`;
    id += bytes[pos + 1]! << 5;
    head.size = 2;
  }
  const shape = shapes[id];
  if (shape === undefined) return `record id ${id} at byte ${pos} has no shape in the file`;
  head.children = shape.length;
  return null;
}

function scalar(head: Head, size: number): null {
  head.size = size;
  return null;
}

function container(head: Head, size: number, children: number): null {
  head.size = size;
  head.children = children;
  return null;
}

/** Big-endian length field of `width` bytes at `at`, or null when it runs past the end. */
function lengthAt(view: DataView, at: number, width: 1 | 2 | 4): number | null {
  if (at + width > view.byteLength) return null;
  return width === 1 ? view.getUint8(at) : width === 2 ? view.getUint16(at) : view.getUint32(at);
}

/** str/bin: a length, then that many bytes. */
function sized(view: DataView, pos: number, width: 1 | 2 | 4, head: Head): string | null {
  const length = lengthAt(view, pos + 1, width);
  if (length === null) return truncated(pos);
  return scalar(head, 1 + width + length);
}

/** array/map 16/32: a count of items (pairs, for a map) that follow. */
function counted(view: DataView, pos: number, width: 2 | 4, perEntry: 1 | 2, head: Head): string | null {
  const count = lengthAt(view, pos + 1, width);
  if (count === null) return truncated(pos);
  return container(head, 1 + width, perEntry * count);
}

/** ext 8/16/32: a length, a type byte, that many bytes. */
function extension(view: DataView, pos: number, width: 1 | 2 | 4, head: Head): string | null {
  const length = lengthAt(view, pos + 1, width);
  if (length === null || pos + 1 + width >= view.byteLength) return truncated(pos);
  return allowedExtension(view.getUint8(pos + 1 + width), pos) ?? scalar(head, 2 + width + length);
}

/** fixext 1/2/4/8/16: a type byte, then `length` bytes. */
function fixedExtension(view: DataView, pos: number, length: number, head: Head): string | null {
  if (pos + 1 >= view.byteLength) return truncated(pos);
  return allowedExtension(view.getUint8(pos + 1), pos) ?? scalar(head, 2 + length);
}

function allowedExtension(type: number, pos: number): string | null {
  if (ALLOWED_EXTENSIONS.has(type)) return null;
  const name = EXTENSION_NAMES.get(type) ?? 'an extension this reader does not decode';
  return `msgpack extension type ${type} at byte ${pos} (${name}), which shuma never writes`;
}

