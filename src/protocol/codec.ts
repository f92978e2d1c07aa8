import { Packr } from 'msgpackr';

// The one configured msgpack codec. Plain maps and arrays only: no record extension (its
// shared structures would tie encoder and decoder state together across threads), no
// structured-clone extension (it would accept cycles and arbitrary classes on decode).
export const CODEC_OPTIONS = {
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  mapsAsObjects: true,
  bundleStrings: false,
  int64AsType: 'number',
} as const;

const packr = new Packr({ ...CODEC_OPTIONS });

/** Encodes into a fresh buffer that the caller owns (safe to transfer). */
export function encode(value: unknown): Uint8Array {
  // pack() returns a view into a shared scratch buffer: copy it before it can be reused.
  // (Buffer#slice would only make another view; the Uint8Array constructor copies.)
  return new Uint8Array(packr.pack(value));
}

export function decode(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}
