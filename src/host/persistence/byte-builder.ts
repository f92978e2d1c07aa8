// What the snapshot file's bytes are gathered in (snapshot-encoder.ts), and the msgpack headers it
// writes itself around the values it gathers.

/**
 * Blocks filled one after the other (never copied to grow), made one buffer at the end unless
 * one block holds them all. Not zero-filled: every byte handed out was written.
 */
export class ByteBuilder {
  private readonly full: Buffer[] = [];
  private block: Buffer;
  private at = 0;
  /** Bytes gathered so far: the offset of the next byte in the whole. */
  length = 0;

  constructor(capacity: number) {
    this.block = Buffer.allocUnsafeSlow(capacity);
  }

  push(bytes: Uint8Array): void {
    if (bytes.length > this.block.length - this.at && this.full.length === 0 && this.at * 8 <= bytes.length) this.grow(bytes.length);
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

  /** Writes `value` big-endian over the 4 bytes at `offset`, gathered earlier (a length known only later). */
  patchUint32(offset: number, value: number): void {
    for (let i = 0; i < 4; i++) this.setByte(offset + i, (value >>> (24 - 8 * i)) & 0xff);
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

  private setByte(offset: number, byte: number): void {
    for (const block of this.full) {
      if (offset < block.length) {
        block[offset] = byte;
        return;
      }
      offset -= block.length;
    }
    this.block[offset] = byte;
  }

  /**
   * Little gathered yet, and much more to come (the envelope's head, then a cold write's
   * records, none kept): one block large enough, the little copied over. Chained instead, the
   * whole was copied again at the end, 5 MB of 10,000 workspaces twice into fresh pages.
   */
  private grow(wanted: number): void {
    const block = Buffer.allocUnsafeSlow(this.at + wanted + (wanted >> 4) + 65536);
    this.block.copy(block, 0, 0, this.at);
    this.block = block;
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

/** map 16 as msgpackr writes every map (it fills the count in afterwards), so the bytes are its own. */
export function mapHeader(count: number): Uint8Array {
  if (count < 0x10000) return Uint8Array.of(0xde, count >> 8, count & 0xff);
  return Uint8Array.of(0xdf, count >>> 24, (count >> 16) & 0xff, (count >> 8) & 0xff, count & 0xff);
}

export function arrayHeader(count: number): Uint8Array {
  if (count < 16) return Uint8Array.of(0x90 | count);
  if (count < 0x10000) return Uint8Array.of(0xdc, count >> 8, count & 0xff);
  return Uint8Array.of(0xdd, count >>> 24, (count >> 16) & 0xff, (count >> 8) & 0xff, count & 0xff);
}

/** bin 32 with its length still to come (patchUint32 at the returned offset + 1). */
export const BIN32_PLACEHOLDER = Uint8Array.of(0xc6, 0, 0, 0, 0);
