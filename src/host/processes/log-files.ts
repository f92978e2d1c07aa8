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

export interface LogPair {
  stdout: LogFile;
  stderr: LogFile;
}

/** A pair kept with the owner it was opened for, so walks that select by owner need not rebuild it. */
interface OwnedPair extends LogPair {
  owner: LogOwner;
}

async function closePair(pair: LogPair): Promise<void> {
  await Promise.all([pair.stdout.close(), pair.stderr.close()]);
}

export class LogFiles {
  readonly limits: LogFileLimits;
  readonly timestamps: boolean;
  /** Workspace id → `<key>/<label>` → the pair: a stopped workspace lets its own go without a walk of everyone's. */
  private readonly files = new Map<string, Map<string, OwnedPair>>();
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
    return `${owner.key}/${owner.label}`;
  }

  private pairOf(owner: LogOwner): LogPair | undefined {
    return this.files.get(owner.wsId)?.get(this.id(owner));
  }

  /** Every open pair, for the walks that select by owner (flush). */
  private *owned(): Generator<OwnedPair> {
    for (const pairs of this.files.values()) yield* pairs.values();
  }

  /** The pair of files a run's output is appended to (made on the first write). */
  open(owner: LogOwner, timestamps: boolean | undefined): LogPair {
    let pairs = this.files.get(owner.wsId);
    if (!pairs) this.files.set(owner.wsId, (pairs = new Map()));
    const id = this.id(owner);
    let pair = pairs.get(id);
    if (!pair) {
      const paths = this.pathsOf(owner);
      const stamped = timestamps ?? this.timestamps;
      const make = (file: string) => new LogFile(file, this.limits, stamped, (error) => this.onError(file, error), () => this.ensureDir(owner.wsId));
      pair = { owner: { wsId: owner.wsId, key: owner.key, label: owner.label }, stdout: make(paths.stdout), stderr: make(paths.stderr) };
      pairs.set(id, pair);
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
    const open = this.pairOf(owner)?.[stream];
    return open ? open.whileSteady(read) : read();
  }

  /** Empties the files of the commands `match` selects (all, without one), rotated ones too. */
  async flush(match?: (owner: LogOwner) => boolean): Promise<number> {
    let emptied = 0;
    for (const pair of [...this.owned()]) {
      if (match && !match(pair.owner)) continue;
      await pair.stdout.truncate();
      await pair.stderr.truncate();
      emptied++;
    }
    // Without a selection, the files of workspaces that are gone too.
    if (!match) {
      const open = new Set([...this.owned()].flatMap((pair) => [pair.stdout.path, pair.stderr.path]));
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

  /** Forgets one command's (or pipeline node's) files (they stay on disk): a command let go. */
  async releaseOne(owner: LogOwner): Promise<void> {
    const pairs = this.files.get(owner.wsId);
    const id = this.id(owner);
    const pair = pairs?.get(id);
    if (!pair) return;
    pairs!.delete(id);
    if (pairs!.size === 0) this.files.delete(owner.wsId);
    await closePair(pair);
  }

  /** Forgets every file of a workspace that stopped (they stay on disk), what it wrote last landed first. */
  async releaseWorkspace(wsId: string): Promise<void> {
    const pairs = this.files.get(wsId);
    this.files.delete(wsId);
    this.madeDirs.delete(wsId);
    if (pairs) await Promise.all([...pairs.values()].map(closePair));
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.files.keys()].map((wsId) => this.releaseWorkspace(wsId)));
  }
}
