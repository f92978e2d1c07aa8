import { Socket, type OnReadOpts, type SocketConstructorOpts } from 'node:net';
import type { Readable } from 'node:stream';
import { FloodCapture } from './flood-capture.js';
import type { SpawnerAddon } from './native-addon.js';
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
 */
export class CapturedOutput {
  readonly stream: Readable;
  private ring: CaptureRing | null = null;
  private grown = false;
  /** A flood heard by nobody but the ring is read by the addon's thread (spawn/flood-capture.ts). */
  private flood: FloodCapture | null = null;

  constructor(
    private readonly fd: number,
    private readonly addon: SpawnerAddon,
  ) {
    // `onread` (documented for connect(), honoured by the constructor; missing from its types):
    // `buffer` is asked for the next read's memory after each read. manualStart: reading starts
    // when asked, as a plain Readable's would; read before, a chunk would be emitted to nobody.
    const options: SocketConstructorOpts & { onread: OnReadOpts; manualStart: boolean } = {
      fd,
      readable: true,
      writable: false,
      manualStart: true,
      onread: {
        buffer: () => (this.flood?.active ? null : this.ring?.region()) ?? READ_BUFFER,
        callback: (bytes: number, into: Uint8Array) => this.onRead(bytes, into as Buffer),
      },
    };
    this.stream = new Socket(options);
  }

  captureInto(ring: CaptureRing): void {
    this.ring = ring;
    // The stream reads on when the flood's thread saw the end: it reads the end, and closes.
    this.flood = FloodCapture.for(this.addon, this.fd, ring, () => this.stream.resume());
    if (this.flood) {
      const flood = this.flood;
      // Before the listener is added (and resumes reading): every byte from here is read here.
      this.stream.on('newListener', (event) => event === 'data' && flood.leave());
      this.stream.once('close', () => flood.leave());
    }
    this.stream.resume();
  }

  private onRead(bytes: number, into: Buffer): boolean {
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
    this.stream.emit('data', chunk);
    // A writer that fills its pipe, heard by nobody but the ring: the addon's thread reads it
    // from now on and this stream stops reading (false: paused) until it is handed back. Else
    // never paused: the host reads every output to its end (its ring keeps what fits).
    if (bytes >= FULL_PIPE_BYTES && this.stream.listenerCount('data') === 0 && this.flood?.enter()) return false;
    return true;
  }
}
