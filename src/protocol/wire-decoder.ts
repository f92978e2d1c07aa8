import {
  EXT_MSGPACKR,
  EXT_RECORD,
  EXT_SHAPE_DEF,
  EXT_SHAPES_RESET,
  EXT_STRING_DEF,
  EXT_STRING_REF,
  EXT_UNDEFINED,
  STRING_SLOTS,
} from './wire-format.js';

/** A shape as the decoder knows it: its keys, and an object builder once it is used often. */
interface Shape {
  keys: string[];
  uses: number;
  build: ((read: () => unknown) => Record<string, unknown>) | null;
}

/** Uses of a shape before its builder is compiled: shapes seen once or twice (maps keyed by ids) are not worth it. */
const COMPILE_AFTER = 8;

const textDecoder = new TextDecoder();

/**
 * The reading end of one ordered stream of the worker wire (wire-format.ts): every batch of
 * its WireEncoder, each once, in order — its tables follow the encoder's as it reads.
 */
export class WireDecoder {
  private bytes: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(this.bytes.buffer);
  private pos = 0;
  private readonly slots: string[] = [];
  private nextSlot = 0;
  private shapes: Shape[] = [];
  private readonly read = (): unknown => this.value();

  /** @param fallback decodes what the encoder's fallback wrote. */
  constructor(private readonly fallback: (bytes: Uint8Array) => unknown) {}

  decode(bytes: Uint8Array): unknown {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
    const value = this.value();
    if (this.pos !== bytes.length) throw new Error(`the worker wire read ${this.pos} of ${bytes.length} bytes: the stream lost its order`);
    return value;
  }

  private value(): unknown {
    const bytes = this.bytes;
    const b = bytes[this.pos++]!;
    if (b < 0x80) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b >= 0xa0 && b < 0xc0) return this.utf8(b & 0x1f);
    if (b >= 0x90 && b < 0xa0) return this.array(b & 0x0f);
    if (b >= 0x80 && b < 0x90) return this.map(b & 0x0f);
    const view = this.view;
    let n: number;
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xcc:
        return bytes[this.pos++];
      case 0xcd:
        n = view.getUint16(this.pos);
        this.pos += 2;
        return n;
      case 0xce:
        n = view.getUint32(this.pos);
        this.pos += 4;
        return n;
      case 0xcf:
        n = Number(view.getBigUint64(this.pos));
        this.pos += 8;
        return n;
      case 0xd0:
        return view.getInt8(this.pos++);
      case 0xd1:
        n = view.getInt16(this.pos);
        this.pos += 2;
        return n;
      case 0xd2:
        n = view.getInt32(this.pos);
        this.pos += 4;
        return n;
      case 0xd3:
        n = Number(view.getBigInt64(this.pos));
        this.pos += 8;
        return n;
      case 0xca:
        n = view.getFloat32(this.pos);
        this.pos += 4;
        return n;
      case 0xcb:
        n = view.getFloat64(this.pos);
        this.pos += 8;
        return n;
      case 0xd9:
        return this.utf8(bytes[this.pos++]!);
      case 0xda:
        n = view.getUint16(this.pos);
        this.pos += 2;
        return this.utf8(n);
      case 0xdb:
        n = view.getUint32(this.pos);
        this.pos += 4;
        return this.utf8(n);
      case 0xdc:
        n = view.getUint16(this.pos);
        this.pos += 2;
        return this.array(n);
      case 0xdd:
        n = view.getUint32(this.pos);
        this.pos += 4;
        return this.array(n);
      case 0xde:
        n = view.getUint16(this.pos);
        this.pos += 2;
        return this.map(n);
      case 0xdf:
        n = view.getUint32(this.pos);
        this.pos += 4;
        return this.map(n);
      case 0xd4:
        return this.small(bytes[this.pos++]!, bytes[this.pos++]!);
      case 0xd5:
        n = view.getUint16(this.pos + 1);
        this.pos += 3;
        return this.small(bytes[this.pos - 3]!, n);
      case 0xc7:
        n = bytes[this.pos++]!;
        return this.extension(bytes[this.pos++]!, n);
      case 0xc8:
        n = view.getUint16(this.pos);
        this.pos += 2;
        return this.extension(bytes[this.pos++]!, n);
      case 0xc9:
        n = view.getUint32(this.pos);
        this.pos += 4;
        return this.extension(bytes[this.pos++]!, n);
    }
    throw new Error(`the worker wire holds byte 0x${b.toString(16)} at ${this.pos - 1}, which it never writes`);
  }

  /** fixext1/fixext2: a reference (string or record) or a one-byte marker. */
  private small(type: number, n: number): unknown {
    switch (type) {
      case EXT_STRING_REF: {
        const value = this.slots[n];
        if (value === undefined) throw new Error(`the worker wire refers to string ${n}, never defined: the stream lost its order`);
        return value;
      }
      case EXT_RECORD:
        return this.record(n);
      case EXT_UNDEFINED:
        return undefined;
      case EXT_SHAPES_RESET:
        this.shapes = [];
        return this.value();
    }
    throw new Error(`the worker wire holds an extension of type ${type}, which it never writes`);
  }

  private extension(type: number, length: number): unknown {
    const start = this.pos;
    switch (type) {
      case EXT_STRING_DEF: {
        const value = this.utf8(length);
        this.slots[this.nextSlot] = value;
        this.nextSlot = this.nextSlot + 1 === STRING_SLOTS ? 0 : this.nextSlot + 1;
        return value;
      }
      case EXT_SHAPE_DEF: {
        const keys: string[] = [];
        while (this.pos < start + length) keys.push(this.value() as string);
        this.shapes.push({ keys, uses: 0, build: null });
        return this.value();
      }
      case EXT_MSGPACKR:
        this.pos += length;
        return this.fallback(this.bytes.subarray(start, start + length));
    }
    throw new Error(`the worker wire holds an extension of type ${type}, which it never writes`);
  }

  private record(id: number): Record<string, unknown> {
    const shape = this.shapes[id];
    if (shape === undefined) throw new Error(`the worker wire refers to shape ${id}, never defined: the stream lost its order`);
    if (shape.build !== null) return shape.build(this.read);
    if (++shape.uses === COMPILE_AFTER) shape.build = compileBuilder(shape.keys);
    const keys = shape.keys;
    const out: Record<string, unknown> = {};
    for (let i = 0; i < keys.length; i++) setKey(out, keys[i]!, this.value());
    return out;
  }

  private array(length: number): unknown[] {
    const out = new Array<unknown>(length);
    for (let i = 0; i < length; i++) out[i] = this.value();
    return out;
  }

  private map(size: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < size; i++) {
      const key = this.value();
      setKey(out, String(key), this.value());
    }
    return out;
  }

  private utf8(length: number): string {
    const bytes = this.bytes;
    const start = this.pos;
    const end = start + length;
    this.pos = end;
    if (length < 24) {
      let out = '';
      for (let i = start; i < end; i++) {
        const c = bytes[i]!;
        if (c >= 0x80) return textDecoder.decode(bytes.subarray(start, end));
        out += String.fromCharCode(c);
      }
      return out;
    }
    return textDecoder.decode(bytes.subarray(start, end));
  }
}

/** `__proto__` read from the wire is a key like any other, never the object's prototype. */
function setKey(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  else out[key] = value;
}

/** An object literal with the shape's keys in order: one hidden class for all its records, built without a loop. */
function compileBuilder(keys: readonly string[]): Shape['build'] {
  if (keys.includes('__proto__')) return null;
  const body = `return {${keys.map((key) => `${JSON.stringify(key)}: read()`).join(', ')}};`;
  return new Function('read', body) as (read: () => unknown) => Record<string, unknown>;
}
