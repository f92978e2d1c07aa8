import { rmSync } from 'node:fs';
import net from 'node:net';
import type { Logger } from 'pino';
import { ShumaError } from '../../protocol/errors.js';
import type { FlowMeter } from './flow-meter.js';
import type { FanoutOpener, ReaderFanout } from './native-fanout.js';

/** Bytes the runtime may hold for one flow reader before it drops the reader. */
export const READER_MAX_BUFFERED = 4 * 1024 * 1024;
/** At the end of a flow, how long a reader may take to read what is still buffered for it. */
const READER_END_GRACE_MS = 1_000;
/** sun_path is 108 bytes with its NUL; Node 20 silently truncates a longer path. */
export const MAX_SOCKET_PATH_BYTES = 107;

/**
 * One tapped edge published on a unix socket: any number of readers connect and receive a
 * live copy of the edge's bytes from the moment they attach. Readers never slow the edge.
 *
 * With the native pump, the readers are fed by a thread of the addon's (a ReaderFanout, opened
 * with the first reader): the edge's bytes never enter JavaScript. Otherwise (child_process, or
 * no fanout to be had) the pump publishes each chunk here and this loop writes it to each reader.
 *
 * A reader that falls behind by more than READER_MAX_BUFFERED is dropped (its connection is
 * destroyed), not skipped. Skipping would hand it a byte stream with silent holes — a line
 * cut in two, a record half gone — that it cannot detect; a dropped reader sees its connection
 * end, knows it missed data, and can reconnect to follow the live stream again.
 */
export class FlowChannel {
  private readonly readers = new Set<net.Socket>();
  private closed = false;
  /** Feeds still delivering bytes that crossed before the close (a native pump's tap pipe). */
  private holds = 0;
  private readersEndPending = false;
  /** Told when the number of readers changes: the pump of the current attempt tees for them. */
  onReaders: ((count: number) => void) | null = null;
  /** Feeds the readers outside JavaScript, once the first came (and one could be had). */
  private fanoutOf: ReaderFanout | null = null;
  private fanoutRefused = false;

  private constructor(
    readonly edge: string,
    readonly stream: 'stdout' | 'stderr',
    readonly socketPath: string,
    readonly meter: FlowMeter,
    private readonly server: net.Server,
    private readonly logger: Logger,
    private readonly openFanout: FanoutOpener | null,
  ) {
    server.on('connection', (socket) => this.attach(socket));
    server.on('error', (error) => logger.warn({ edge, socketPath, err: error.message }, 'flow socket error'));
  }

  /** Listens on `socketPath` (its length already checked). */
  static async open(
    edge: string,
    stream: 'stdout' | 'stderr',
    socketPath: string,
    meter: FlowMeter,
    logger: Logger,
    openFanout: FanoutOpener | null = null,
  ): Promise<FlowChannel> {
    const server = net.createServer({ pauseOnConnect: false });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((error: NodeJS.ErrnoException) => {
      server.close();
      throw new ShumaError(
        'INVALID_SPEC',
        `flowDir: could not make the flow socket ${socketPath} (${error.code ?? 'EUNKNOWN'}): ${error.message}; ` +
          'flowDir must be a directory the runtime can write',
        { field: 'flowDir', cause: error.code ?? 'EUNKNOWN' },
      );
    });
    return new FlowChannel(edge, stream, socketPath, meter, server, logger, openFanout);
  }

  get readerCount(): number {
    return this.readers.size;
  }

  /** The native fanout feeding this channel's readers: a pump tees into its pipe (tapFd). */
  get fanout(): ReaderFanout | null {
    return this.fanoutOf;
  }

  /**
   * Hands `chunk` to every reader. The caller passes a buffer of its own that nobody
   * rewrites: a reader's socket may keep it queued.
   */
  publish(chunk: Buffer): void {
    for (const reader of this.readers) {
      if (reader.destroyed || this.fanoutOf?.has(reader)) continue;
      reader.write(chunk);
      if (reader.writableLength > READER_MAX_BUFFERED) {
        this.logger.warn(
          { edge: this.edge, socketPath: this.socketPath, buffered: reader.writableLength },
          'flow reader fell behind; dropped',
        );
        this.forget(reader);
        reader.destroy();
      }
    }
  }

  /**
   * Holds the readers' end until `release` is called: bytes that crossed before the close are
   * still on their way to them (a tap pipe the runtime reads to its end, at most its capacity).
   */
  hold(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holds === 0 && this.readersEndPending) this.endReaders();
    };
  }

  /** Stops listening, removes the socket file, ends every reader's connection. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
    // libuv unlinks a listening unix socket on close; make sure of it all the same.
    rmSync(this.socketPath, { force: true });
    if (this.fanoutOf) {
      // Its readers get what the pumps teed before they ended, then their end.
      const release = this.hold();
      this.fanoutOf.close(release);
    }
    if (this.holds > 0) this.readersEndPending = true;
    else this.endReaders();
  }

  private endReaders(): void {
    this.readersEndPending = false;
    for (const reader of this.readers) {
      reader.end();
      // A reader that does not read what is still queued for it is not waited for.
      const timer = setTimeout(() => reader.destroy(), READER_END_GRACE_MS);
      timer.unref();
      reader.once('close', () => clearTimeout(timer));
    }
    this.readers.clear();
    this.onReaders?.(0);
  }

  /** The last resort at process exit: the file at least must not stay behind. */
  removeFileNow(): void {
    rmSync(this.socketPath, { force: true });
  }

  private attach(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (this.openFanout && !this.fanoutRefused) {
      this.fanoutOf ??= this.openFanout();
      this.fanoutRefused = !this.fanoutOf;
      if (this.fanoutOf && !this.fanoutOf.add(socket)) {
        // Out of descriptors: a reader that cannot be fed is told so at once.
        this.logger.warn({ edge: this.edge, socketPath: this.socketPath }, 'flow reader could not be fed; dropped');
        socket.destroy();
        return;
      }
    }
    this.readers.add(socket);
    // A reader has nothing to say: what it sends is discarded (reading it shows its EOF, or
    // the end the fanout gave it).
    socket.resume();
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.forget(socket));
    this.onReaders?.(this.readers.size);
  }

  private forget(reader: net.Socket): void {
    if (this.fanoutOf?.remove(reader)) {
      this.logger.warn({ edge: this.edge, socketPath: this.socketPath }, 'flow reader fell behind; dropped');
    }
    if (this.readers.delete(reader)) this.onReaders?.(this.readers.size);
  }
}
