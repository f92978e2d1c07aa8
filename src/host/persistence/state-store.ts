import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { serializeError } from '../../protocol/errors.js';
import type { SnapshotData } from './snapshot-data.js';
import { SnapshotEncoder, type CollectedState } from './snapshot-encoder.js';
import { writeSnapshotData } from './snapshot-file.js';

/** After the first change, how long more changes may gather before one write carries them all. */
const WRITE_DELAY_MS = 50;
/**
 * …and at least this many times as long as the last write took. A write encodes every
 * workspace on the main thread: 10,000 take ~0.3 s, and written every 50 ms while workspaces
 * were created or restored they made the main thread do little else (creating 10,000 with a
 * stateDir took 3× as long as without). The main thread then spends at most a fifth of its
 * time writing; a small state is still written 50 ms after a change.
 */
const WRITE_SPACING = 4;

/**
 * Writes the snapshot after changes, never when nothing changed (the original's dirty flag),
 * at most one write in flight, and once more on demand (at shutdown).
 */
export class StateStore {
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  /** Writes done; tests read it to check that an idle runtime writes nothing. */
  writes = 0;
  private frozen = false;
  /** What freeze() wrote: the state the next runtime brings back, amended once the stops are done. */
  private frozenData: SnapshotData | null = null;
  /** Set while writes fail: one warning per episode (a full disk fails every write until freed). */
  private failing = false;
  /** How long the last write took, ms (encoding and disk). */
  private lastWriteMs = 0;
  /** While a restore brings the file's own state back, changes gather and nothing is written. */
  private held = false;
  /** Each workspace's bytes from the last write: what did not change is not encoded again. */
  private readonly encoder = new SnapshotEncoder();

  constructor(
    private readonly stateDir: string,
    /** The state now, every workspace's record made (what the shutdown freezes, then amends). */
    private readonly collect: () => SnapshotData,
    /** The state now for a write: no record made of a workspace whose bytes the encoder `keeps`. */
    private readonly collectChanges: (keeps: (id: string, changes: number) => boolean) => CollectedState,
    private readonly logger: Logger,
    /** The runtime's warnings: what the user must hear of (a snapshot that cannot be written). */
    private readonly warn: (message: string) => void = () => undefined,
  ) {}

  /** Something changed; `changed`, the workspace it changed, has its change count bumped. */
  markDirty(changed?: { changes: number }): void {
    if (changed) changed.changes++;
    if (this.frozen) return;
    this.dirty = true;
    if (this.timer || this.held) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, Math.max(WRITE_DELAY_MS, WRITE_SPACING * this.lastWriteMs));
  }

  /** Writes now if anything changed; resolves when the file on disk holds it. */
  flush(): Promise<void> {
    return this.write(() => this.collectChanges((id, changes) => this.encoder.keeps(id, changes)));
  }

  /**
   * `last`: the shutdown's own writes (freeze, amend), made whatever the dirty flag says. A
   * write queued behind one in flight once took the flag the freeze had set, and the freeze's
   * write then found nothing to do: no state frozen, so the shutdown's exits were never amended
   * in, and the next runtime lost the runs the shutdown ended. A write queued before the
   * freeze that has not begun is skipped: the freeze's own write follows it.
   */
  private write(collect: () => CollectedState, last = false): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.writing = this.writing.then(async () => {
      if (!last && (this.frozen || !this.dirty)) return;
      this.dirty = false;
      try {
        const started = performance.now();
        const { bytes, ms } = await writeSnapshotData(this.stateDir, collect(), this.encoder);
        this.lastWriteMs = performance.now() - started;
        this.writes++;
        this.logger.debug({ stateDir: this.stateDir, bytes, ms }, 'snapshot written');
        if (this.failing) this.logger.info({ stateDir: this.stateDir }, 'snapshot written again');
        this.failing = false;
      } catch (error) {
        // The next change tries again; the file on disk is still the last complete one.
        this.dirty = true;
        this.logger.error({ stateDir: this.stateDir, err: serializeError(error) }, 'snapshot could not be written');
        if (!this.failing) {
          this.warn(`the snapshot in ${this.stateDir} could not be written (${(error as Error).message}): the file there is the last complete one; each change tries again`);
        }
        this.failing = true;
      }
    });
    return this.writing;
  }

  /**
   * No write until `release()`: the state being restored is the file's own, and writing it
   * back while 10,000 workspaces come back cost the restore a third of its time. A crash
   * meanwhile leaves the file that is being restored.
   */
  hold(): void {
    this.held = true;
  }

  /** Changes made while held are written as any change is. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    if (this.dirty && !this.timer) this.markDirty();
  }

  /**
   * Writes what is now, then ignores every later change: at shutdown the state saved is the
   * one before everything was stopped, so the next runtime brings it back.
   */
  async freeze(): Promise<void> {
    // Frozen first: changes made while this last write is under way must not follow it.
    this.frozen = true;
    await this.write(() => (this.frozenData = this.collect()), true);
  }

  /**
   * The frozen state once more, `amend`ed (the exits of the runs the shutdown ended go into its
   * history): the last write. Nothing if nothing was frozen.
   */
  async amendFrozen(amend: (data: SnapshotData) => void): Promise<void> {
    const data = this.frozenData;
    if (data === null) return;
    amend(data);
    await this.write(() => data, true);
  }
}
