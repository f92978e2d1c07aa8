import type { Logger } from 'pino';
import { serializeError } from '../../protocol/errors.js';
import type { SnapshotData } from './snapshot-data.js';
import { writeSnapshotFile } from './snapshot-file.js';

/** After the first change, how long more changes may gather before one write carries them all. */
const WRITE_DELAY_MS = 50;

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

  constructor(
    private readonly stateDir: string,
    private readonly collect: () => SnapshotData,
    private readonly logger: Logger,
    /** The runtime's warnings: what the user must hear of (a snapshot that cannot be written). */
    private readonly warn: (message: string) => void = () => undefined,
  ) {}

  markDirty(): void {
    if (this.frozen) return;
    this.dirty = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, WRITE_DELAY_MS);
  }

  /** Writes now if anything changed; resolves when the file on disk holds it. */
  flush(): Promise<void> {
    return this.write(this.collect);
  }

  private write(collect: () => SnapshotData): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.writing = this.writing.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      try {
        const { bytes, ms } = await writeSnapshotFile(this.stateDir, collect());
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
   * Writes what is now, then ignores every later change: at shutdown the state saved is the
   * one before everything was stopped, so the next runtime brings it back.
   */
  async freeze(): Promise<void> {
    // Frozen first: changes made while this last write is under way must not follow it.
    this.frozen = true;
    this.dirty = true;
    await this.write(() => (this.frozenData = this.collect()));
  }

  /**
   * The frozen state once more, `amend`ed (the exits of the runs the shutdown ended go into its
   * history): the last write. Nothing if nothing was frozen.
   */
  async amendFrozen(amend: (data: SnapshotData) => void): Promise<void> {
    const data = this.frozenData;
    if (data === null) return;
    amend(data);
    this.dirty = true;
    await this.write(() => data);
  }
}
