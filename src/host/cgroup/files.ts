import { closeSync, constants, mkdirSync, openSync, readSync, readdirSync, rmdirSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

// Small file operations on cgroup control files and directories, shared by v1 and v2.

/** The errno name of a failed system call (`EACCES`), or the message of any other error. */
export function errorCode(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return typeof code === 'string' ? code : error.message;
  }
  return String(error);
}

/**
 * Writes one value to a control file. No O_CREAT: a missing control file means the kernel does not
 * offer it (controller not enabled, old kernel), and that must fail as ENOENT rather than create a
 * plain file. O_TRUNC keeps fixture files (plain files) holding exactly the last value written.
 */
export function writeControl(file: string, value: string): void {
  const fd = openSync(file, constants.O_WRONLY | constants.O_TRUNC);
  try {
    writeSync(fd, value);
  } finally {
    closeSync(fd);
  }
}

/**
 * A control file kept open and re-read from offset 0 on every read: one pread instead of
 * open+read+close (cgroup files are seq_files, which regenerate their text on a read at offset 0).
 */
export class ControlFile {
  private fd: number | null;
  private buffer = Buffer.alloc(512);

  private constructor(fd: number) {
    this.fd = fd;
  }

  /** null when the file is not there (controller absent): the value it would give is then unknown. */
  static open(file: string): ControlFile | null {
    try {
      return new ControlFile(openSync(file, 'r'));
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return null;
      throw error;
    }
  }

  /** The whole text, or null once the cgroup is gone (ENODEV) or the file was closed. */
  read(): string | null {
    if (this.fd === null) return null;
    let length = 0;
    try {
      for (;;) {
        const n = readSync(this.fd, this.buffer, length, this.buffer.length - length, length);
        length += n;
        if (n === 0 || length < this.buffer.length) break;
        this.grow();
      }
    } catch (error) {
      // The kernel answers ENODEV once the cgroup was removed under us: no value, not a crash.
      if (errorCode(error) === 'ENODEV') return null;
      throw error;
    }
    return this.buffer.toString('latin1', 0, length);
  }

  close(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
  }

  private grow(): void {
    const bigger = Buffer.alloc(this.buffer.length * 2);
    this.buffer.copy(bigger);
    this.buffer = bigger;
  }
}

/** The first integer in a file such as `memory.current` ("1234\n"). */
export function parseInteger(text: string): number | null {
  const value = Number.parseInt(text, 10);
  return Number.isFinite(value) ? value : null;
}

/** The value of `key` in a flat-keyed file such as `cpu.stat` or `memory.events` ("key value" lines). */
export function parseKeyed(text: string, key: string): number | null {
  for (const line of text.split('\n')) {
    const space = line.indexOf(' ');
    if (space > 0 && line.slice(0, space) === key) return parseInteger(line.slice(space + 1));
  }
  return null;
}

/** The pids of a `cgroup.procs` text. */
export function parsePids(text: string): number[] {
  const pids: number[] = [];
  for (const line of text.split('\n')) {
    const pid = Number.parseInt(line, 10);
    if (pid > 0) pids.push(pid);
  }
  return pids;
}

export type MadeDirs = { ok: true; dir: string; created: string[] } | { ok: false; reason: string };

/**
 * mkdir for each segment under `base` (which must exist). Existing directories are reused: a
 * parent shared with other workspaces, or a cgroup the user named that already exists.
 * Gives the leaf and the directories this call created, outermost first; on failure, removes
 * what it created and says which directory could not be made and why.
 */
export function makeDirs(base: string, segments: readonly string[]): MadeDirs {
  const created: string[] = [];
  let dir = base;
  try {
    for (const segment of segments) {
      dir = path.join(dir, segment);
      if (mkdirIfMissing(dir)) created.push(dir);
    }
  } catch (error) {
    const left = removeNow(created);
    const note = left.length > 0 ? ` (left behind, could not be removed: ${left.join(', ')})` : '';
    return { ok: false, reason: `${dir} could not be created (${errorCode(error)})${note}` };
  }
  return { ok: true, dir, created };
}

function mkdirIfMissing(dir: string): boolean {
  try {
    mkdirSync(dir);
    return true;
  } catch (error) {
    if (errorCode(error) !== 'EEXIST') throw error;
    // EEXIST: fine when it is a directory (a shared or pre-made cgroup), not when it is a control file.
    if (!statSync(dir).isDirectory()) throw error;
    return false;
  }
}

/** rmdir, innermost first, for a rollback in which nothing can be busy yet. Returns what could not be removed. */
export function removeNow(dirs: readonly string[]): string[] {
  const failed: string[] = [];
  for (const dir of [...dirs].reverse()) {
    try {
      rmdirSync(dir);
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') failed.push(`${dir} (${errorCode(error)})`);
    }
  }
  return failed;
}

/** The cgroups made below `dir` (by a process inside, or a fixture), innermost first. */
export function childCgroups(dir: string): string[] {
  const out: string[] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return out; // already removed
    throw error;
  }
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const child = path.join(dir, entry.name);
    out.push(...childCgroups(child), child);
  }
  return out;
}

/**
 * rmdir a cgroup directory. The kernel answers EBUSY while exiting processes are still being
 * released from it, so retry with a short backoff until `timeoutMs`. A missing directory is done.
 */
export async function removeCgroupDir(dir: string, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    try {
      rmdirSync(dir);
      return;
    } catch (error) {
      const code = errorCode(error);
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || Date.now() >= deadline) {
        throw new Error(`could not remove cgroup ${dir} (${code})${code === 'EBUSY' ? ': processes or child cgroups are still in it' : ''}`, { cause: error });
      }
    }
    await delay(wait);
  }
}

/** `20.00 MiB`: the unit the quota messages use. */
export function formatBytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(2)} MiB`;
}
