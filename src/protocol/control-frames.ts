import { decodeUntrusted, encode } from './codec.js';
import { ShumaError } from './errors.js';

// The control socket's framing (control.ts): a 4-byte big-endian length, then that much msgpack,
// and the caps that keep one peer from making the other buffer or recurse without end.

/** A request frame larger than this is refused and the connection closed. */
export const MAX_REQUEST_BYTES = 1024 * 1024;
/** Responses carry logs (two 1 MiB rings by default) and `ps` of thousands of processes. */
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** Requests are flat; a spec nests a few levels. msgpackr's own recursion is far deeper. */
export const MAX_FRAME_DEPTH = 32;
export const FRAME_HEADER_BYTES = 4;


/** One frame: the length prefix and the message, in a buffer of its own. */
export function encodeFrame(value: unknown): Buffer {
  const body = encode(value);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}

/** Decodes one frame's body after the restricted walk; throws BAD_REQUEST on bytes it refuses. */
export function decodeFrame(body: Uint8Array): unknown {
  if (body.length === 0) throw new ShumaError('BAD_REQUEST', 'an empty frame: a frame holds one msgpack value');
  const decoded = decodeUntrusted(body, MAX_FRAME_DEPTH);
  if (decoded.ok) return decoded.value;
  throw new ShumaError(
    'BAD_REQUEST',
    decoded.stage === 'refused' ? `the frame is not msgpack shuma reads: ${decoded.reason}` : `the frame does not decode: ${decoded.reason}`,
  );
}

/**
 * Cuts a byte stream into frame bodies. A length prefix over `maxBytes` cannot be skipped
 * safely (the rest may never come): `push` throws, and the connection should be closed.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const bodies: Buffer[] = [];
    while (this.buffered >= FRAME_HEADER_BYTES) {
      const head = this.peek(FRAME_HEADER_BYTES);
      const length = head.readUInt32BE(0);
      if (length > this.maxBytes) {
        throw new ShumaError('BAD_REQUEST', `a frame of ${length} bytes is over the ${this.maxBytes}-byte cap`);
      }
      if (this.buffered < FRAME_HEADER_BYTES + length) break;
      const all = this.peek(FRAME_HEADER_BYTES + length);
      bodies.push(Buffer.from(all.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length)));
      this.consume(FRAME_HEADER_BYTES + length);
    }
    return bodies;
  }

  private peek(bytes: number): Buffer {
    if (this.chunks[0]!.length < bytes) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }

  private consume(bytes: number): void {
    const first = this.chunks[0]!;
    this.chunks[0] = first.subarray(bytes);
    if (this.chunks[0].length === 0) this.chunks.shift();
    this.buffered -= bytes;
  }
}

