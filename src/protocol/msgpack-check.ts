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

/** Items still to read in each enclosing container, deepest last (the walk's stack, kept). */
let enclosing = new Int32Array(64);

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

/**
 * Walks the one item at `pos` of `bytes` (`view` over the same bytes), which must end by `end`,
 * as checkStructure walks: returns where it ends, or why it is refused. For a writer that
 * checks many values packed one after the other (the snapshot file's workspaces), and learns
 * where each ends.
 *
 * One loop, the common items (fixint, fixstr, records, small maps and arrays) decided inline:
 * every snapshot write walks every record it packs, and a walk through a helper per item and a
 * head object cost a cold write of 10,000 workspaces a fifth as much as the pack itself.
 */
export function walkItem(bytes: Uint8Array, view: DataView, pos: number, end: number, maxDepth: number, shapes?: RecordShapes): number | string {
  // No deeper than the cap, nor than there are bytes to hold items.
  const capacity = Math.min(maxDepth, end - pos) + 1;
  if (enclosing.length < capacity) enclosing = new Int32Array(capacity);
  let depth = 0;
  let left = 1; // items still to read at this level
  for (;;) {
    while (left === 0) {
      if (depth === 0) return pos;
      left = enclosing[--depth]!;
    }
    left--;
    if (pos >= end) return truncated(pos);
    const lead = bytes[pos]!;
    let size = 1;
    let children = 0;
    if (lead <= 0x3f || lead >= 0xe0) {
      // fixint
    } else if (lead <= 0x7f) {
      // fixint, or a record: its id (one byte, or two from 0x60 on), then one value per key of its shape
      if (shapes !== undefined) {
        let id = lead - 0x40;
        if (lead >= 0x60) {
          if (pos + 1 >= end) return truncated(pos);
          // msgpackr reads the second byte only when the shape of the first byte's own id exists.
          if (shapes[id] === undefined) return noShape(id, pos);
          id += bytes[pos + 1]! << 5;
          size = 2;
        }
        const shape = shapes[id];
        if (shape === undefined) return noShape(id, pos);
        children = shape.length;
      }
    } else if (lead <= 0x8f) {
      children = 2 * (lead & 0x0f); // fixmap
    } else if (lead <= 0x9f) {
      children = lead & 0x0f; // fixarray
    } else if (lead <= 0xbf) {
      size = 1 + (lead & 0x1f); // fixstr
    } else {
      switch (lead) {
        case 0xc0: case 0xc2: case 0xc3: break; // nil, false, true
        case 0xc1: return `byte 0xc1 at ${pos}, which msgpack never uses`;
        case 0xc4: case 0xd9: // bin 8, str 8
          if (pos + 2 > end) return truncated(pos);
          size = 2 + bytes[pos + 1]!;
          break;
        case 0xc5: case 0xda:
          if (pos + 3 > end) return truncated(pos);
          size = 3 + view.getUint16(pos + 1);
          break;
        case 0xc6: case 0xdb:
          if (pos + 5 > end) return truncated(pos);
          size = 5 + view.getUint32(pos + 1);
          break;
        case 0xc7: case 0xc8: case 0xc9: { // ext 8/16/32: a length, a type byte, that many bytes
          const width = lead === 0xc7 ? 1 : lead === 0xc8 ? 2 : 4;
          if (pos + 1 + width >= end) return truncated(pos);
          const length = width === 1 ? bytes[pos + 1]! : width === 2 ? view.getUint16(pos + 1) : view.getUint32(pos + 1);
          const refused = allowedExtension(bytes[pos + 1 + width]!, pos);
          if (refused !== null) return refused;
          size = 2 + width + length;
          break;
        }
        case 0xca: size = 5; break; // float 32
        case 0xcb: size = 9; break;
        case 0xcc: case 0xd0: size = 2; break; // (u)int 8
        case 0xcd: case 0xd1: size = 3; break;
        case 0xce: case 0xd2: size = 5; break;
        case 0xcf: case 0xd3: size = 9; break;
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: { // fixext 1/2/4/8/16: a type byte, then the bytes
          if (pos + 1 >= end) return truncated(pos);
          const refused = allowedExtension(bytes[pos + 1]!, pos);
          if (refused !== null) return refused;
          size = 2 + (1 << (lead - 0xd4));
          break;
        }
        case 0xdc: // array 16
          if (pos + 3 > end) return truncated(pos);
          size = 3;
          children = view.getUint16(pos + 1);
          break;
        case 0xdd:
          if (pos + 5 > end) return truncated(pos);
          size = 5;
          children = view.getUint32(pos + 1);
          break;
        case 0xde: // map 16
          if (pos + 3 > end) return truncated(pos);
          size = 3;
          children = 2 * view.getUint16(pos + 1);
          break;
        default: // 0xdf, map 32
          if (pos + 5 > end) return truncated(pos);
          size = 5;
          children = 2 * view.getUint32(pos + 1);
      }
    }
    if (pos + size > end) return truncated(pos);
    pos += size;
    if (children > 0) {
      if (depth >= maxDepth) return `maps and arrays nest deeper than ${maxDepth} levels`;
      enclosing[depth++] = left;
      left = children;
    }
  }
}

function truncated(pos: number): string {
  return `it ends in the middle of an item (at byte ${pos}): truncated`;
}

function noShape(id: number, pos: number): string {
  return `record id ${id} at byte ${pos} has no shape in the file`;
}

function allowedExtension(type: number, pos: number): string | null {
  if (ALLOWED_EXTENSIONS.has(type)) return null;
  const name = EXTENSION_NAMES.get(type) ?? 'an extension this reader does not decode';
  return `msgpack extension type ${type} at byte ${pos} (${name}), which shuma never writes`;
}

