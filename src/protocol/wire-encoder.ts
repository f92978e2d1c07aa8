import {
  EXT_MSGPACKR,
  EXT_RECORD,
  EXT_SHAPE_DEF,
  EXT_SHAPES_RESET,
  EXT_STRING_DEF,
  EXT_STRING_REF,
  EXT_UNDEFINED,
  MAX_INTERNED,
  MIN_INTERNED,
  STRING_SLOTS,
} from './wire-format.js';
import { ShapeTable } from './wire-shapes.js';

/**
 * The writing end of one ordered stream of the worker wire (wire-format.ts): its bytes are
 * read only by its own WireDecoder, each batch once, in order.
 */
export class WireEncoder {
  private buf = new Uint8Array(16_384);
  private view = new DataView(this.buf.buffer);
  private pos = 0;
  /** The same memory as `buf`, for Buffer's native UTF-8 writer (long strings). */
  private node: Buffer | undefined;
  private readonly strings = new Map<string, number>();
  private readonly slots: string[] = [];
  private nextSlot = 0;
  private readonly shapes = new ShapeTable();

  /** @param fallback encodes a value none of the codes above can hold (msgpackr's plain form). */
  constructor(private readonly fallback: (value: unknown) => Uint8Array) {}

  /** The value's bytes, in a buffer of their own (safe to transfer). */
  encode(value: unknown): Uint8Array {
    this.pos = 0;
    if (this.shapes.full) {
      this.shapes.reset();
      this.room(3);
      this.fixext1(EXT_SHAPES_RESET, 0);
    }
    this.write(value);
    return this.buf.slice(0, this.pos);
  }

  private write(value: unknown): void {
    switch (typeof value) {
      case 'string':
        this.string(value);
        return;
      case 'number':
        this.number(value);
        return;
      case 'boolean':
        this.room(1);
        this.buf[this.pos++] = value ? 0xc3 : 0xc2;
        return;
      case 'undefined':
        this.room(3);
        this.fixext1(EXT_UNDEFINED, 0);
        return;
      case 'object':
        if (value === null) {
          this.room(1);
          this.buf[this.pos++] = 0xc0;
        } else if (Array.isArray(value)) {
          this.array(value);
        } else {
          const proto: unknown = Object.getPrototypeOf(value);
          if (proto === Object.prototype || proto === null) this.object(value as Record<string, unknown>);
          else this.foreign(value);
        }
        return;
      case 'function':
        // As msgpackr: a function is nothing.
        this.room(1);
        this.buf[this.pos++] = 0xc0;
        return;
      default:
        this.foreign(value);
    }
  }

  private number(value: number): void {
    this.room(9);
    const buf = this.buf;
    if (value >>> 0 === value) {
      if (value < 0x80) buf[this.pos++] = value;
      else if (value < 0x100) {
        buf[this.pos++] = 0xcc;
        buf[this.pos++] = value;
      } else if (value < 0x10000) {
        buf[this.pos++] = 0xcd;
        this.view.setUint16(this.pos, value);
        this.pos += 2;
      } else {
        buf[this.pos++] = 0xce;
        this.view.setUint32(this.pos, value);
        this.pos += 4;
      }
    } else if ((value | 0) === value) {
      if (value >= -0x20) buf[this.pos++] = value & 0xff;
      else if (value >= -0x80) {
        buf[this.pos++] = 0xd0;
        buf[this.pos++] = value & 0xff;
      } else if (value >= -0x8000) {
        buf[this.pos++] = 0xd1;
        this.view.setInt16(this.pos, value);
        this.pos += 2;
      } else {
        buf[this.pos++] = 0xd2;
        this.view.setInt32(this.pos, value);
        this.pos += 4;
      }
    } else {
      buf[this.pos++] = 0xcb;
      this.view.setFloat64(this.pos, value);
      this.pos += 8;
    }
  }

  private string(value: string): void {
    const length = value.length;
    if (length >= MIN_INTERNED && length <= MAX_INTERNED) {
      const slot = this.strings.get(value);
      if (slot !== undefined) {
        this.room(4);
        if (slot < 0x100) this.fixext1(EXT_STRING_REF, slot);
        else this.fixext2(EXT_STRING_REF, slot);
        return;
      }
      this.intern(value);
      // ext8: length, type, then the bytes (at most 3 per UTF-16 unit: 192 here).
      this.room(3 + length * 3);
      const start = this.pos;
      const end = this.utf8(value, start + 3);
      this.buf[start] = 0xc7;
      this.buf[start + 1] = end - start - 3;
      this.buf[start + 2] = EXT_STRING_DEF;
      this.pos = end;
      return;
    }
    this.plainString(value);
  }

  /** The string takes the next slot of the ring; the decoder does the same as it reads its definition. */
  private intern(value: string): void {
    const slot = this.nextSlot;
    const old = this.slots[slot];
    if (old !== undefined) this.strings.delete(old);
    this.slots[slot] = value;
    this.strings.set(value, slot);
    this.nextSlot = slot + 1 === STRING_SLOTS ? 0 : slot + 1;
  }

  private plainString(value: string): void {
    const length = value.length;
    this.room(5 + length * 3);
    // The header's size guessed from the length in UTF-16 units; moved if the bytes need a larger one.
    const header = length < 0x20 ? 1 : length < 0x100 ? 2 : length < 0x10000 ? 3 : 5;
    const start = this.pos;
    const end = length < 0x40 ? this.utf8(value, start + header) : start + header + this.nodeBuffer().write(value, start + header, 'utf8');
    const bytes = end - start - header;
    const needed = bytes < 0x20 ? 1 : bytes < 0x100 ? 2 : bytes < 0x10000 ? 3 : 5;
    if (needed !== header) this.buf.copyWithin(start + needed, start + header, end);
    const buf = this.buf;
    if (needed === 1) buf[start] = 0xa0 | bytes;
    else if (needed === 2) {
      buf[start] = 0xd9;
      buf[start + 1] = bytes;
    } else if (needed === 3) {
      buf[start] = 0xda;
      this.view.setUint16(start + 1, bytes);
    } else {
      buf[start] = 0xdb;
      this.view.setUint32(start + 1, bytes);
    }
    this.pos = start + needed + bytes;
  }

  /** Writes the string as UTF-8 at `at` (room is made by the caller); returns where it ends. */
  private utf8(value: string, at: number): number {
    const buf = this.buf;
    let p = at;
    for (let i = 0; i < value.length; i++) {
      let c = value.charCodeAt(i);
      if (c < 0x80) buf[p++] = c;
      else if (c < 0x800) {
        buf[p++] = (c >> 6) | 0xc0;
        buf[p++] = (c & 0x3f) | 0x80;
      } else {
        if ((c & 0xfc00) === 0xd800 && i + 1 < value.length) {
          const low = value.charCodeAt(i + 1);
          if ((low & 0xfc00) === 0xdc00) {
            c = 0x10000 + ((c & 0x3ff) << 10) + (low & 0x3ff);
            i++;
            buf[p++] = (c >> 18) | 0xf0;
            buf[p++] = ((c >> 12) & 0x3f) | 0x80;
            buf[p++] = ((c >> 6) & 0x3f) | 0x80;
            buf[p++] = (c & 0x3f) | 0x80;
            continue;
          }
        }
        buf[p++] = (c >> 12) | 0xe0;
        buf[p++] = ((c >> 6) & 0x3f) | 0x80;
        buf[p++] = (c & 0x3f) | 0x80;
      }
    }
    return p;
  }

  private array(value: readonly unknown[]): void {
    const length = value.length;
    this.room(5);
    if (length < 0x10) this.buf[this.pos++] = 0x90 | length;
    else if (length < 0x10000) {
      this.buf[this.pos++] = 0xdc;
      this.view.setUint16(this.pos, length);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = 0xdd;
      this.view.setUint32(this.pos, length);
      this.pos += 4;
    }
    for (let i = 0; i < length; i++) this.write(value[i]);
  }

  private object(value: Record<string, unknown>): void {
    const shape = this.shapes.shapeOf(value);
    if (this.shapes.isNew) this.defineShape(value);
    if (shape < 0) {
      this.map(value);
      return;
    }
    this.room(4);
    if (shape < 0x100) this.fixext1(EXT_RECORD, shape);
    else this.fixext2(EXT_RECORD, shape);
    for (const key in value) this.write(value[key]);
  }

  private defineShape(value: Record<string, unknown>): void {
    this.room(4);
    const start = this.pos;
    this.pos += 4;
    for (const key in value) this.plainString(key);
    this.buf[start] = 0xc8;
    this.view.setUint16(start + 1, this.pos - start - 4);
    this.buf[start + 3] = EXT_SHAPE_DEF;
  }

  private map(value: Record<string, unknown>): void {
    let size = 0;
    for (const key in value) size++;
    this.room(5);
    if (size < 0x10) this.buf[this.pos++] = 0x80 | size;
    else if (size < 0x10000) {
      this.buf[this.pos++] = 0xde;
      this.view.setUint16(this.pos, size);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = 0xdf;
      this.view.setUint32(this.pos, size);
      this.pos += 4;
    }
    for (const key in value) {
      this.string(key);
      this.write(value[key]);
    }
  }

  /** A value of a kind the wire's own codes do not cover, written by msgpackr whole. */
  private foreign(value: unknown): void {
    const bytes = this.fallback(value);
    this.room(6 + bytes.length);
    this.buf[this.pos++] = 0xc9;
    this.view.setUint32(this.pos, bytes.length);
    this.pos += 4;
    this.buf[this.pos++] = EXT_MSGPACKR;
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  private fixext1(type: number, byte: number): void {
    this.buf[this.pos++] = 0xd4;
    this.buf[this.pos++] = type;
    this.buf[this.pos++] = byte;
  }

  private fixext2(type: number, value: number): void {
    this.buf[this.pos++] = 0xd5;
    this.buf[this.pos++] = type;
    this.view.setUint16(this.pos, value);
    this.pos += 2;
  }

  private room(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + bytes) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
    this.node = undefined;
  }

  private nodeBuffer(): Buffer {
    return (this.node ??= Buffer.from(this.buf.buffer, this.buf.byteOffset, this.buf.length));
  }
}
