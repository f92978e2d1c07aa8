import { Packr, RESET_BUFFER_MODE, REUSE_BUFFER_MODE } from 'msgpackr';
import { checkStructure } from './msgpack-check.js';
import { WireDecoder } from './wire-decoder.js';
import { WireEncoder } from './wire-encoder.js';

// The one msgpackr configuration, for its three uses: plain maps and arrays, no structured-clone
// extension (it would accept cycles and arbitrary classes on decode), no bundled strings, 64-bit
// ints as numbers. The worker wire and the control socket write no records either (shared
// structures would tie encoder and decoder state together across threads). The snapshot file's
// data alone is written as records (persistence/snapshot-records.ts: these options plus a shape
// table that travels in the file itself, so no state is shared across processes either).
// What differs is how far the bytes read are trusted:
//
// | use | read from | before decoding | after decoding |
// |---|---|---|---|
// | worker wire (channel.ts) | our own threads | nothing: trusted | the message's string tag |
// | control socket (control.ts) | any local process that can connect | a frame-size cap, `checkStructure` (MAX_FRAME_DEPTH) | every request's shape |
// | snapshot file's envelope (persistence/snapshot-file.ts; its data is records with their shapes in the file, persistence/snapshot-records.ts) | disk: maybe corrupt, maybe not ours | a file-size cap, `checkStructure` (SNAPSHOT_MAX_DEPTH) | the envelope, then the data |
//
// The worker wire alone goes further (wire-format.ts): each ordered stream (one direction of
// one channel) has its own encoder and decoder, which write msgpack's scalars, arrays and maps
// themselves and refer to what the stream already said: a record's keys, and an interned string
// (ids, event names), both told inline the first time, so the decoder learns them as it reads,
// in order — no state shared across threads or files. Values of any other kind (a Date, a
// typed array) travel inside as this configuration's bytes.
//
// Every encode copies out of msgpackr's scratch buffer (which the next pack() anywhere in the
// thread reuses): a worker message is transferred, a frame is queued, a file write awaits.

/** The options every use shares; records are the snapshot data's own (snapshot-records.ts). */
export const MSGPACK_OPTIONS = {
  structuredClone: false,
  moreTypes: false,
  mapsAsObjects: true,
  bundleStrings: false,
  int64AsType: 'number',
} as const;

const packr = new Packr({ ...MSGPACK_OPTIONS, useRecords: false });

/**
 * Encodes into a buffer of its own that the caller owns: safe to transfer, queue or keep.
 * (Not Buffer.from: a small one lands in Node's shared pool, whose memory cannot be transferred.)
 */
export function encode(value: unknown): Uint8Array {
  // pack() returns a view into the scratch buffer; the Uint8Array constructor copies it.
  return new Uint8Array(packr.pack(value));
}

/**
 * Encodes like encode(), into the scratch buffer itself: `use` sees the bytes at
 * `scratch[start, end)` and must copy what it keeps before it returns (the next encode reuses
 * the space). For a writer gathering many values into one buffer of its own (the snapshot
 * file): no buffer allocated per value.
 */
export function encodeInScratch<T>(value: unknown, use: (scratch: Uint8Array, start: number, end: number) => T): T {
  const scratch: Uint8Array = packr.pack(value, REUSE_BUFFER_MODE | RESET_BUFFER_MODE);
  // In this mode msgpackr returns its whole scratch buffer, the value's bytes marked on it.
  const { start, end } = scratch as unknown as { start: number; end: number };
  return use(scratch, start, end);
}

/** Decodes bytes from our own threads (written by encode()). */
export function decode(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}

/** The writing end of one ordered stream of the worker wire: its bytes are read only by its decoder, in order. */
export function streamEncoder(): (value: unknown) => Uint8Array {
  const stream = new WireEncoder(encode);
  return (value) => stream.encode(value);
}

/** The reading end of one ordered stream: every batch of its encoder, each once, in order. */
export function streamDecoder(): (bytes: Uint8Array) => unknown {
  const stream = new WireDecoder(decode);
  return (bytes) => stream.decode(bytes);
}

export type UntrustedDecode =
  | { ok: true; value: unknown }
  /** `refused`: the structure walk turned the bytes down; `undecodable`: msgpackr threw on them. */
  | { ok: false; stage: 'refused' | 'undecodable'; reason: string };

/**
 * Decodes bytes from outside (a socket, a file): only what the restricted walk accepts reaches
 * msgpackr (no extensions but undefined and timestamps, nesting at most `maxDepth`).
 */
export function decodeUntrusted(bytes: Uint8Array, maxDepth: number): UntrustedDecode {
  const refused = checkStructure(bytes, maxDepth);
  if (refused !== null) return { ok: false, stage: 'refused', reason: refused };
  try {
    return { ok: true, value: packr.unpack(bytes) };
  } catch (error) {
    // Checked bytes should decode; if msgpackr still refuses them (or runs out of stack), that
    // is bad content all the same.
    return { ok: false, stage: 'undecodable', reason: error instanceof Error ? error.message : String(error) };
  }
}
