// One captured stream's file on disk, beside its ring. Capture only copies a chunk into the
// current block (a chunk is a view of the spawner's reused read buffer); the blocks are written
// in one batch (writev) after the current turn, off the capture path, by one write at a time. Size-based rotation keeps it bounded: `out.log` → `out.log.1` → … → `out.log.<keep>`.
import { promises as fs } from 'node:fs';

export interface LogFileLimits {
  /** A file past this many bytes is rotated (default 10 MiB). */
  maxBytes: number;
  /** Rotated files kept beside the current one (default 3; 0: the file is emptied instead). */
  keep: number;
}

export const LOG_FILE_DEFAULTS: LogFileLimits = { maxBytes: 10 * 1024 * 1024, keep: 3 };

/** Bytes waiting for the disk past which new output is dropped (and the gap noted in the file). */
const MAX_PENDING_BYTES = 16 * 1024 * 1024;
/** Chunks are copied into blocks of this size: an allocation per block, not per chunk. */
const BLOCK_BYTES = 256 * 1024;
/**
 * Written blocks kept for reuse, for every file on this thread (8 MiB at most): a flood would
 * otherwise allocate a fresh block per 256 KiB, and the garbage collector and the page faults
 * of new memory cost more than the copy itself.
 */
const spareBlocks: Buffer[] = [];
const MAX_SPARE_BLOCKS = 32;
/** A file nobody wrote to for this long is closed: a thousand quiet commands hold no descriptors. */
const IDLE_CLOSE_MS = 2000;

export class LogFile {
  /** Owned bytes waiting for the disk: whole stamped chunks, or runs of the current block. */
  private pending: Buffer[] = [];
  private block: Buffer | null = null;
  private blockUsed = 0;
  private pendingBytes = 0;
  private dropped = 0;
  private handle: fs.FileHandle | null = null;
  private size = -1;
  private draining: Promise<void> | null = null;
  /** Batches taken for the disk, and how many of them are done with (on disk, or lost to an error). */
  private taken = 0;
  private landed = 0;
  /** Readers waiting for a batch to land (landedUpTo). */
  private waiters: Array<{ batch: number; resolve: () => void }> = [];
  private rotating: Promise<void> | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private atLineStart = true;
  /** Reads under way (whileSteady): a rotation waits for them. */
  private readonly readers = new Set<Promise<void>>();

  constructor(
    readonly path: string,
    private readonly limits: LogFileLimits,
    private readonly timestamps: boolean,
    private readonly onError: (error: unknown) => void,
    /** Makes the file's directory, before its first open. */
    private readonly prepare: () => Promise<void>,
  ) {}

  write(chunk: Buffer): void {
    if (this.pendingBytes + chunk.length > MAX_PENDING_BYTES) {
      this.dropped += chunk.length;
      return;
    }
    if (this.timestamps) {
      const data = this.stamp(chunk, Date.now());
      this.pending.push(data);
      this.pendingBytes += data.length;
    } else {
      this.copyIn(chunk);
    }
    if (!this.draining) this.draining = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.drain());
  }

  /** Resolves once the writer is idle: everything written, up to now and meanwhile, is on disk. */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /**
   * Resolves once what was written up to now is on disk, whatever is written meanwhile: under a
   * flood the writer is never idle, and a reader waiting for that (flush) would wait for the flood's end.
   */
  private landedUpToNow(): Promise<void> {
    const batch = this.pending.length > 0 || this.dropped > 0 ? this.taken + 1 : this.taken;
    if (this.landed >= batch) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ batch, resolve }));
  }

  private land(): void {
    this.landed = this.taken;
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.batch <= this.landed);
    this.waiters = this.waiters.filter((w) => w.batch > this.landed);
    for (const waiter of ready) waiter.resolve();
  }

  /** Empties the file and removes its rotated ones (`shuma flush`). */
  async truncate(): Promise<void> {
    await this.flush();
    await this.closeHandle();
    await fs.truncate(this.path, 0).catch(ignoreMissing);
    for (let i = 1; i <= Math.max(this.limits.keep, LOG_FILE_DEFAULTS.keep); i++) await fs.rm(`${this.path}.${i}`, { force: true });
    this.size = 0;
  }

  async close(): Promise<void> {
    await this.flush();
    await this.closeHandle();
  }

  /** Appends a copy of `chunk` to the pending runs, extending the last run while it has room. */
  private copyIn(chunk: Buffer): void {
    this.pendingBytes += chunk.length;
    let offset = 0;
    while (offset < chunk.length) {
      if (!this.block || this.blockUsed === this.block.length) {
        this.block = spareBlocks.pop() ?? Buffer.allocUnsafe(BLOCK_BYTES);
        this.blockUsed = 0;
      }
      const start = this.blockUsed;
      const copied = chunk.copy(this.block, start, offset);
      offset += copied;
      this.blockUsed += copied;
      const last = this.pending[this.pending.length - 1];
      // The same block, right after the last run: one longer run (one iovec for the write).
      if (last && last.buffer === this.block.buffer && last.byteOffset + last.length === this.block.byteOffset + start) {
        this.pending[this.pending.length - 1] = this.block.subarray(start - last.length, this.blockUsed);
      } else {
        this.pending.push(this.block.subarray(start, this.blockUsed));
      }
    }
  }

  /** Each line starts with the time it was read, ISO 8601 in UTC. */
  private stamp(chunk: Buffer, at: number): Buffer {
    const prefix = Buffer.from(`${new Date(at).toISOString()} `);
    const parts: Buffer[] = [];
    let start = 0;
    while (start < chunk.length) {
      if (this.atLineStart) parts.push(prefix);
      const newline = chunk.indexOf(10, start);
      const end = newline === -1 ? chunk.length : newline + 1;
      parts.push(chunk.subarray(start, end));
      this.atLineStart = newline !== -1;
      start = end;
    }
    return Buffer.concat(parts);
  }

  private async drain(): Promise<void> {
    try {
      if (this.idleTimer) clearTimeout(this.idleTimer);
      while (this.pending.length > 0 || this.dropped > 0) {
        if (this.dropped > 0) {
          this.pending.push(Buffer.from(`\n[shuma: ${this.dropped} bytes were written faster than the disk took them, and dropped]\n`));
          this.dropped = 0;
        }
        const batch = this.pending;
        this.pending = [];
        this.pendingBytes = 0;
        this.taken++;
        await this.append(batch);
        this.recycle(batch);
        this.land();
      }
    } catch (error) {
      // A full disk or a removed directory loses the file's copy; the ring still has the output.
      if (this.pending.length > 0) this.taken++;
      this.pending = [];
      this.pendingBytes = 0;
      await this.closeHandle();
      this.onError(error);
    } finally {
      this.land();
      this.draining = null;
      this.idleTimer = setTimeout(() => void this.closeIdle(), IDLE_CLOSE_MS);
      this.idleTimer.unref();
    }
  }

  /** A block whose last run is on disk is full and written whole: it may be filled again. */
  private recycle(batch: readonly Buffer[]): void {
    for (const run of batch) {
      if (run.byteOffset + run.length !== BLOCK_BYTES || run.buffer.byteLength !== BLOCK_BYTES) continue;
      if (this.block && run.buffer === this.block.buffer) this.block = null;
      if (spareBlocks.length < MAX_SPARE_BLOCKS) spareBlocks.push(Buffer.from(run.buffer, 0, BLOCK_BYTES));
    }
  }

  private async append(batch: Buffer[]): Promise<void> {
    if (!this.handle) {
      await this.prepare();
      this.handle = await fs.open(this.path, 'a', 0o600);
      this.size = (await this.handle.stat()).size;
    }
    const length = batch.reduce((sum, run) => sum + run.length, 0);
    if (this.size > 0 && this.size + length > this.limits.maxBytes) {
      this.rotating = this.rotate();
      try {
        await this.rotating;
      } finally {
        this.rotating = null;
      }
    }
    let rest = [...batch];
    while (rest.length > 0) {
      let { bytesWritten } = await this.handle!.writev(rest);
      // A short write (a full disk about to say ENOSPC): go on from where it stopped.
      while (rest.length > 0 && bytesWritten >= rest[0]!.length) bytesWritten -= rest.shift()!.length;
      if (rest.length > 0 && bytesWritten > 0) rest = [rest[0]!.subarray(bytesWritten), ...rest.slice(1)];
    }
    this.size += length;
  }

  /**
   * Every name stays present throughout, so a reader (logs, a stat) never finds one missing: each
   * is replaced at once (a rename over it) by a hard link to the file before it, oldest first, and
   * the current file last by a fresh one. The oldest kept file is dropped by being replaced.
   * In-process readers (whileSteady) are waited for, so they never see a file under two names.
   */
  private async rotate(): Promise<void> {
    await this.closeHandle();
    while (this.readers.size > 0) await Promise.all(this.readers);
    if (this.limits.keep === 0) {
      await fs.truncate(this.path, 0);
      this.handle = await fs.open(this.path, 'a', 0o600);
      this.size = 0;
      return;
    }
    const spare = `${this.path}.rotating`;
    for (let i = this.limits.keep - 1; i >= 0; i--) {
      const from = i === 0 ? this.path : `${this.path}.${i}`;
      await fs.rm(spare, { force: true });
      const linked = await fs.link(from, spare).then(
        () => true,
        (error: unknown) => {
          const code = (error as { code?: string }).code;
          if (code === 'ENOENT') return false;
          // A file system without hard links: the plain shift, with its instant of a missing name.
          if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') return null;
          throw error;
        },
      );
      if (linked === null) await fs.rename(from, `${this.path}.${i + 1}`).catch(ignoreMissing);
      else if (linked) await fs.rename(spare, `${this.path}.${i + 1}`);
    }
    await fs.rm(spare, { force: true });
    const handle = await fs.open(spare, 'ax', 0o600);
    try {
      await fs.rename(spare, this.path);
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
    this.handle = handle;
    this.size = 0;
  }

  /**
   * Runs `read` over the file and its rotated ones once what was written so far is on disk, with
   * no rotation under way: a rotation waits for it, so the read sees every byte under one name.
   * Output that arrives meanwhile is not waited for (a flood would hold the read until it ends).
   */
  async whileSteady<T>(read: () => Promise<T>): Promise<T> {
    await this.landedUpToNow();
    // Checked and registered in one turn: a rotation that starts later waits for this read.
    while (this.rotating) await this.rotating.catch(() => undefined);
    const reading = read();
    const settled = reading.then(
      () => undefined,
      () => undefined,
    );
    this.readers.add(settled);
    try {
      return await reading;
    } finally {
      this.readers.delete(settled);
    }
  }

  private async closeIdle(): Promise<void> {
    if (this.draining || this.pending.length > 0) return;
    await this.closeHandle();
  }

  private async closeHandle(): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const handle = this.handle;
    this.handle = null;
    await handle?.close().catch(() => undefined);
  }
}

function ignoreMissing(error: unknown): void {
  if ((error as { code?: string }).code !== 'ENOENT') throw error;
}
