// Every captured stream's file under `<stateDir>/logs/<workspace id>/`: one pair per command
// (`<label>.<command key>.out.log`, `.err.log`), shared by all its runs and kept across daemon
// restarts, so `logs` shows a command's history, not only its current run. Pipeline nodes are
// filed under their pipeline's id. The files stay after their workspace stops; `flush` empties them.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { LOG_FILE_DEFAULTS, LogFile, type LogFileLimits } from './log-file.js';
import { readTail } from './log-tail.js';

export interface LogFileOptions extends Partial<LogFileLimits> {
  /** Every line of every command's files starts with the time it was read (default false; per command: spec.timestamps). */
  timestamps?: boolean;
}

export interface LogPaths {
  stdout: string;
  stderr: string;
}

/** What names a command's files: its workspace, its key (a pipeline's id for a node) and label. */
export interface LogOwner {
  wsId: string;
  key: string;
  label: string;
}

/** A label as a file name: anything but letters, digits, `.`, `_` and `-` becomes `_`. */
function safe(label: string): string {
  return label.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64) || '_';
}

export class LogFiles {
  readonly limits: LogFileLimits;
  readonly timestamps: boolean;
  private readonly files = new Map<string, { stdout: LogFile; stderr: LogFile }>();
  private readonly madeDirs = new Set<string>();

  constructor(
    readonly dir: string,
    options: LogFileOptions,
    private readonly onError: (file: string, error: unknown) => void,
  ) {
    this.limits = { maxBytes: options.maxBytes ?? LOG_FILE_DEFAULTS.maxBytes, keep: options.keep ?? LOG_FILE_DEFAULTS.keep };
    this.timestamps = options.timestamps ?? false;
  }

  pathsOf(owner: LogOwner): LogPaths {
    const base = path.join(this.dir, owner.wsId, `${safe(owner.label)}.${owner.key}`);
    return { stdout: `${base}.out.log`, stderr: `${base}.err.log` };
  }

  private id(owner: LogOwner): string {
    return `${owner.wsId}/${owner.key}/${owner.label}`;
  }

  /** The pair of files a run's output is appended to (made on the first write). */
  open(owner: LogOwner, timestamps: boolean | undefined): { stdout: LogFile; stderr: LogFile } {
    const id = this.id(owner);
    let pair = this.files.get(id);
    if (!pair) {
      const paths = this.pathsOf(owner);
      const stamped = timestamps ?? this.timestamps;
      const make = (file: string) => new LogFile(file, this.limits, stamped, (error) => this.onError(file, error), () => this.ensureDir(owner.wsId));
      pair = { stdout: make(paths.stdout), stderr: make(paths.stderr) };
      this.files.set(id, pair);
    }
    return pair;
  }

  private async ensureDir(wsId: string): Promise<void> {
    if (this.madeDirs.has(wsId)) return;
    await fs.mkdir(path.join(this.dir, wsId), { recursive: true, mode: 0o700 });
    this.madeDirs.add(wsId);
  }

  /** What a command (or node) wrote, across its runs and the daemon's restarts; null when it has no file. */
  async tail(owner: LogOwner, stream: 'stdout' | 'stderr', want: { lines?: number; bytes?: number }): Promise<Buffer | null> {
    const file = this.pathsOf(owner)[stream];
    const read = async () => {
      const exists = await fs.stat(file).then(() => true, () => false);
      return exists ? readTail(file, this.limits.keep, want) : null;
    };
    const open = this.files.get(this.id(owner))?.[stream];
    return open ? open.whileSteady(read) : read();
  }

  /** Empties the files of the commands `match` selects (all, without one), rotated ones too. */
  async flush(match?: (owner: LogOwner) => boolean): Promise<number> {
    let emptied = 0;
    for (const [id, pair] of this.files) {
      const [wsId, key, ...rest] = id.split('/');
      if (match && !match({ wsId: wsId!, key: key!, label: rest.join('/') })) continue;
      await pair.stdout.truncate();
      await pair.stderr.truncate();
      emptied++;
    }
    // Without a selection, the files of workspaces that are gone too.
    if (!match) {
      const open = new Set([...this.files.values()].flatMap((pair) => [pair.stdout.path, pair.stderr.path]));
      const dirs = await fs.readdir(this.dir).catch(() => [] as string[]);
      for (const ws of dirs) {
        const names = await fs.readdir(path.join(this.dir, ws)).catch(() => [] as string[]);
        for (const name of names) {
          const file = path.join(this.dir, ws, name);
          if (!open.has(file)) await fs.rm(file, { force: true });
        }
      }
    }
    return emptied;
  }

  /** Forgets a command's files (they stay on disk): a removed command, a stopped workspace. */
  async release(match: (owner: LogOwner) => boolean): Promise<void> {
    for (const [id, pair] of [...this.files]) {
      const [wsId, key, ...rest] = id.split('/');
      if (!match({ wsId: wsId!, key: key!, label: rest.join('/') })) continue;
      this.files.delete(id);
      await pair.stdout.close();
      await pair.stderr.close();
    }
  }

  /** Forgets one command's (or pipeline node's) files, found by its owner: a finished command let go. */
  async releaseOne(owner: LogOwner): Promise<void> {
    const id = this.id(owner);
    const pair = this.files.get(id);
    if (!pair) return;
    this.files.delete(id);
    await pair.stdout.close();
    await pair.stderr.close();
  }

  async closeAll(): Promise<void> {
    await this.release(() => true);
  }
}
