import { randomFillSync } from 'node:crypto';

// ulid's default source asks the OS for one byte at a time (16 getRandomValues calls per id
// whenever the millisecond changed): measured at ~57 µs per id, a few per spawn. The same
// cryptographic bytes, drawn 4 KiB at a time, cost well under a microsecond per id.
const POOL_BYTES = 4096;

/** A PRNG for ulid's factories: uniform in [0, 1), from the OS's CSPRNG, read in blocks. */
export function pooledRandom(): () => number {
  const pool = new Uint8Array(POOL_BYTES);
  let next = POOL_BYTES;
  return () => {
    if (next === POOL_BYTES) {
      randomFillSync(pool);
      next = 0;
    }
    // ulid maps the value to one of 32 characters with Math.floor(prng() * 32): a byte / 256
    // keeps that mapping exactly uniform.
    return pool[next++]! / 256;
  };
}
