// File steps the snapshot's atomic write and its setting aside are made of, each durable or
// idempotent on its own: what snapshot-file.ts composes into "old file or new one, complete".
import { constants, promises as fs } from 'node:fs';

export async function writeDurably(file: string, bytes: Uint8Array | string): Promise<void> {
  const handle = await fs.open(file, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes the rename itself durable: until then a power cut may bring the old name back. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function moveToFreeName(from: string, to: string): Promise<boolean> {
  try {
    await fs.link(from, to);
  } catch (error) {
    if (errnoOf(error) === 'EEXIST') return false; // an earlier corrupt file has that name
    if (errnoOf(error) !== 'EPERM') throw error;
    // A directory in the file's place cannot be hard-linked. Checking then renaming is safe
    // here: calls are serialized, and the state lock keeps other runtimes out.
    if (await exists(to)) return false;
    await fs.rename(from, to);
    return true;
  }
  await fs.unlink(from);
  return true;
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return false; // the answer, not a failure
    throw error;
  }
}

export async function removeIfPresent(file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (error) {
    if (errnoOf(error) !== 'ENOENT') throw error; // already gone is what we wanted
  }
}

/** The errno name of an OS error (`ENOENT`), if it is one. */
export function errnoOf(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}
