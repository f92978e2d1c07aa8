import { promises as fs } from 'node:fs';
import path from 'node:path';
import { errnoOf, invalidDir } from './state-lock-errors.js';

// The state directory checked before a lock in it means anything: created 0700 when missing,
// refused when it is a link, not a directory, someone else's, or writable by others (any of
// them could replace the lock or the snapshot under a running runtime).

/** The directory as an absolute path, created if missing; throws STATE_DIR_INVALID if unsafe. */
export async function prepareStateDir(stateDir: string): Promise<string> {
  const dir = path.resolve(stateDir);
  await createIfMissing(dir);
  const stat = await fs.lstat(dir).catch((error: unknown) => {
    throw invalidDir(dir, `cannot be examined (${errnoOf(error) ?? String(error)})`, error);
  });
  if (stat.isSymbolicLink()) {
    throw invalidDir(dir, 'is a symbolic link; give the directory it points to (a link could be redirected to another directory under a running runtime)');
  }
  if (!stat.isDirectory()) throw invalidDir(dir, 'exists but is not a directory; give a directory (it is created when missing)');
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) {
    throw invalidDir(dir, `belongs to uid ${stat.uid}, not to this process (uid ${uid}): its owner could replace the lock or the snapshot; give a directory of your own`);
  }
  if ((stat.mode & 0o022) !== 0) {
    const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
    throw invalidDir(dir, `is writable by its group or by others (mode ${mode}): they could replace the lock or the snapshot; run \`chmod 700 ${dir}\``);
  }
  return dir;
}

async function createIfMissing(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    // EEXIST: something that is not a directory is in the way; the checks after this say what.
    if (errnoOf(error) === 'EEXIST') return;
    throw invalidDir(dir, `cannot be created (${errnoOf(error) ?? String(error)})`, error);
  }
}
