// The snapshot benchmark's baseline write: JSON.stringify of the state, written with the same
// guarantees as shuma's snapshot file (persistence/snapshot-file.ts) — a temp file of its own
// (O_EXCL, 0600), fsync, rename over the last, fsync of the directory — so that the two sides
// differ by their encoding and size, not by what they promise after a crash.
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { syncDirectory, writeDurably } from '../src/host/persistence/durable-files.js';

export async function writeJsonDurably(file: string, value: unknown): Promise<void> {
  const text = JSON.stringify(value);
  const temp = `${file}.tmp-${process.pid}-${randomUUID()}`;
  await writeDurably(temp, text);
  await fs.rename(temp, file);
  await syncDirectory(path.dirname(file));
}
