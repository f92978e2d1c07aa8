import { closeSync, readSync } from 'node:fs';
import { Socket, type OnReadOpts, type SocketConstructorOpts } from 'node:net';
import { Readable } from 'node:stream';
import { FloodCapture } from './flood-capture.js';
import type { OutputWatchHandle, SpawnerAddon } from './native-addon.js';
import type { CaptureRing } from './spawner.js';

/**
 * Every captured stream on this thread reads into this one buffer when its ring offers no
 * region: each read is handed on and done with before libuv makes the next read. (A Buffer per
 * read, Node's default, made the garbage collector the largest cost of a fast writer's capture.)
 * As large as a grown pipe, so that one read can empty it.
 */
const READ_BUFFER = Buffer.allocUnsafe(1024 * 1024);
/** A read this large filled a default pipe: the writer is fast, its pipe is grown (once). */
const FULL_PIPE_BYTES = 64 * 1024;

/**
 * A child's stdout or stderr as the native spawner reads it: a stream whose 'data' chunks are
 * views valid during the listener's call (see SpawnedProcess), read on demand (a 'data'
 * listener, resume() or captureInto), and once a ring is given, read straight into its storage.
 *
 * The stream is made when first needed: until then the addon watches the pipe
 * (native/output-watch.c), and an output that ends without a byte written — most commands
 * leave one of their two silent — is closed without ever having one (a net.Socket made, read to
 * its end, destroyed and closed cost ~0.05–0.1 ms of the loop per output). The first byte, or
 * anyone asking for `stream` (a 'data' listener: log files, a line probe), makes it, and it reads
 * from there as it always did.
 */
export class CapturedOutput {
  private readable: Readable | null = null;
  private ring: CaptureRing | null = null;
  private grown = false;
  /** A flood heard by nobody but the ring is read by the addon's thread (spawn/flood-capture.ts). */
  private flood: FloodCapture | null = null;
  /** The addon watches the pipe for its first news: no stream yet. */
  private watch: OutputWatchHandle | null = null;
  /** The pipe ended before anything was written to it: closed here, no stream was needed. */
  private endedEmpty = false;
  private closeListeners: Array<() => void> | null = null;
  private onError: ((error: Error) => void) | null = null;

  constructor(
    private readonly fd: number,
    private readonly addon: SpawnerAddon,
  ) {
    if (addon.outputWatch) this.watch = addon.outputWatch(fd, (ended) => this.onNews(ended));
    else this.open();
  }

  /** The output as a stream, made now if it was not yet (it reads what the pipe holds from here). */
  get stream(): Readable {
    return this.readable ?? this.open();
  }

  /** Every holder of the pipe's write end has let go and everything written was read. */
  onClosed(listener: () => void): void {
    if (this.endedEmpty || this.readable?.closed) listener();
    else if (this.readable) this.readable.once('close', () => listener());
    else (this.closeListeners ??= []).push(listener);
  }

  /** `onError`: a read that failed (the stream closes after it). */
  captureInto(ring: CaptureRing, onError?: (error: Error) => void): void {
    this.ring = ring;
    if (onError) {
      this.onError = onError;
      this.readable?.on('error', onError);
    }
    if (this.readable instanceof Socket) this.capture(this.readable, ring);
  }

  /** The watch's news: nothing was written and nothing can be (closed here), or something to read. */
  private onNews(ended: boolean): void {
    this.watch = null;
    if (!ended) {
      this.open();
      this.readWaiting();
      return;
    }
    this.endedEmpty = true;
    try {
      closeSync(this.fd);
    } catch {
      // Not ours to close any more (cannot be: the runtime holds it until here); nothing leaks.
    }
    const listeners = this.closeListeners ?? [];
    this.closeListeners = null;
    for (const listener of listeners) listener();
  }

  /**
   * Reads what waits in the pipe now, into the ring: a stream reading all along would have had
   * it by this turn, and a read of the log that follows news of the exit must find it (the new
   * stream's own first read comes a turn of the loop later). Less than a full pipe, so the
   * stream's reads see a flood first.
   */
  private readWaiting(): void {
    if (!this.ring || !(this.readable instanceof Socket)) return;
    const into = (this.flood?.active ? null : this.ring.region()) ?? READ_BUFFER;
    let bytes: number;
    try {
      bytes = readSync(this.fd, into, 0, Math.min(into.length, FULL_PIPE_BYTES - 1), null);
    } catch {
      // Nothing after all (EAGAIN), or an error: the stream's read meets it and says so.
      return;
    }
    if (bytes > 0) this.onRead(bytes, into);
  }

  private open(): Readable {
    if (this.watch) {
      this.addon.outputUnwatch?.(this.watch);
      this.watch = null;
    }
    if (this.endedEmpty) {
      // Asked for after it ended empty: a stream that ends at once, as the pipe did.
      const empty = new Readable({ read() {} });
      empty.push(null);
      this.readable = empty;
      return empty;
    }
    // `onread` (documented for connect(), honoured by the constructor; missing from its types):
    // `buffer` is asked for the next read's memory after each read. manualStart: reading starts
    // when asked, as a plain Readable's would; read before, a chunk would be emitted to nobody.
    const options: SocketConstructorOpts & { onread: OnReadOpts; manualStart: boolean } = {
      fd: this.fd,
      readable: true,
      writable: false,
      manualStart: true,
      onread: {
        buffer: () => (this.flood?.active ? null : this.ring?.region()) ?? READ_BUFFER,
        callback: (bytes: number, into: Uint8Array) => this.onRead(bytes, into as Buffer),
      },
    };
    const socket = new Socket(options);
    this.readable = socket;
    for (const listener of this.closeListeners ?? []) socket.once('close', () => listener());
    this.closeListeners = null;
    if (this.onError) socket.on('error', this.onError);
    if (this.ring) this.capture(socket, this.ring);
    return socket;
  }

  private capture(socket: Socket, ring: CaptureRing): void {
    // The stream reads on when the flood's thread saw the end: it reads the end, and closes.
    this.flood = FloodCapture.for(this.addon, this.fd, ring, () => socket.resume());
    if (this.flood) {
      const flood = this.flood;
      // Before the listener is added (and resumes reading): every byte from here is read here.
      socket.on('newListener', (event) => event === 'data' && flood.leave());
      socket.once('close', () => flood.leave());
    }
    socket.resume();
  }

  private onRead(bytes: number, into: Buffer): boolean {
    const stream = this.readable!;
    if (bytes >= FULL_PIPE_BYTES && !this.grown) {
      this.grown = true;
      this.addon.growPipe?.(this.fd);
    }
    const chunk = into.subarray(0, bytes);
    // Read while the flood's thread reads (should not be): what it read came first.
    if (this.flood?.active) this.flood.leave();
    if (this.ring) {
      if (into === READ_BUFFER) this.ring.write(chunk);
      else this.ring.commit(bytes);
    }
    stream.emit('data', chunk);
    // A writer that fills its pipe, heard by nobody but the ring: the addon's thread reads it
    // from now on and this stream stops reading (false: paused) until it is handed back. Else
    // never paused: the host reads every output to its end (its ring keeps what fits).
    if (bytes >= FULL_PIPE_BYTES && stream.listenerCount('data') === 0 && this.flood?.enter()) return false;
    return true;
  }
}
