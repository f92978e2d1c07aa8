import net from 'node:net';
import type { Logger } from 'pino';
import type { FlowChannel } from './flow-socket.js';
import type { FanoutOpener } from './native-fanout.js';

/**
 * A pipe read returns at most the pipe's capacity, 64 KiB by default (F_SETPIPE_SZ, which
 * could raise it, is not reachable from Node). The buffer is twice that: libuv reads again
 * after a read that filled its buffer, and that second read would mostly be a wasted EAGAIN.
 */
const CHUNK_BYTES = 128 * 1024;

/** One edge leaving a source: the write end of the reader's stdin pipe, and its channel. */
export interface PumpSink {
  /** The runtime's end of the kernel pipe that is the reading node's stdin. */
  fd: number;
  channel: FlowChannel;
}

/** What the hub asks of a pump, JS or native (native-pump.ts). */
export interface EdgePump {
  /** Brings the edges' meters up to date (a native pump counts outside JavaScript). */
  sync(): void;
  destroy(): void;
}

export type PumpFactory = ((sourceFd: number, sinks: readonly PumpSink[], logger: Logger) => EdgePump) & {
  /** The native pump's: flow-socket readers fed by the addon (native-fanout.ts), never by JS. */
  readonly openFanout?: FanoutOpener;
};

export const jsPumpFactory: PumpFactory = (sourceFd, sinks, logger) => new FlowPump(sourceFd, sinks, logger);

interface Sink {
  readonly socket: net.Socket;
  readonly channel: FlowChannel;
  alive: boolean;
  /** A write is still queued: the reading buffer may not be reused until it drains. */
  blocked: boolean;
}

/**
 * Moves one node's output (stdout or stderr) to the stdin of each of its readers, through
 * the runtime, as `tee` would, with pipe semantics:
 *
 * - Backpressure: reading stops while any reader's pipe is full, so the writer blocks in the
 *   kernel as it would writing into a full pipe. At most one chunk is in flight: nothing
 *   is buffered beyond it.
 * - One reading buffer, reused: a chunk is read into it and written to every reader; reading
 *   resumes only once every reader took the chunk whole. No allocation per chunk (a copy is
 *   made only for flow-socket readers, who may keep it queued).
 * - A reader that is gone (EPIPE) is dropped; when none is left, the runtime closes its read
 *   end, so the writer gets SIGPIPE at its next write, as in `yes | head -1` under bash.
 * - End of input is passed on: every reader's stdin is closed once its queue is written.
 * - Every chunk handed to a reader's pipe is counted on that edge's meter.
 */
export class FlowPump implements EdgePump {
  private readonly source: net.Socket;
  private readonly sinks: Sink[];
  private blocked = 0;
  private live: number;
  /** No more reading: the source ended, or nobody reads it. */
  private ended = false;
  private sinksEnded = false;

  constructor(sourceFd: number, sinks: readonly PumpSink[], private readonly logger: Logger) {
    this.sinks = sinks.map((target) => this.openSink(target));
    this.live = this.sinks.length;
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    // `onread` (documented for connect(), honoured by the constructor; missing from its types)
    // reads into our buffer and pauses the socket when the callback returns false.
    const options: net.SocketConstructorOpts & { onread: net.OnReadOpts } = {
      fd: sourceFd,
      readable: true,
      writable: false,
      onread: { buffer, callback: (bytes: number, into: Uint8Array) => this.onChunk(bytes, into as Buffer) },
    };
    this.source = new net.Socket(options);
    this.source.on('error', (error: NodeJS.ErrnoException) => {
      this.logger.warn({ err: error.message, code: error.code }, 'flow source read error');
    });
    this.source.on('end', () => this.endSinks());
    this.source.on('close', () => this.endSinks());
  }

  /** Counted as each chunk is handed on: always up to date. */
  sync(): void {}

  /** Closes everything at once: the pipeline is over (or its spawn failed). */
  destroy(): void {
    this.ended = true;
    this.source.destroy();
    for (const sink of this.sinks) sink.socket.destroy();
  }

  private openSink(target: PumpSink): Sink {
    // highWaterMark 1: write() returns false as soon as any byte is queued, and 'drain'
    // follows when the queue is empty — exactly when the reading buffer may be reused.
    const options: net.SocketConstructorOpts & { writableHighWaterMark: number } = {
      fd: target.fd,
      readable: false,
      writable: true,
      writableHighWaterMark: 1,
    };
    const socket = new net.Socket(options);
    const sink: Sink = { socket, channel: target.channel, alive: true, blocked: false };
    socket.on('drain', () => {
      if (!sink.blocked) return;
      sink.blocked = false;
      this.unblock();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // EPIPE: the reading node closed its stdin or exited: the ordinary end of a pipe.
      if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') {
        this.logger.warn({ edge: sink.channel.edge, err: error.message, code: error.code }, 'flow write error');
      }
      this.lose(sink);
    });
    socket.on('close', () => this.lose(sink));
    return sink;
  }

  /** One chunk read from the source; returning false stops reading until every sink drained. */
  private onChunk(bytes: number, buffer: Buffer): boolean {
    const chunk = buffer.subarray(0, bytes);
    let copy: Buffer | undefined;
    for (const sink of this.sinks) {
      if (!sink.alive) continue;
      if (!sink.socket.write(chunk)) {
        sink.blocked = true;
        this.blocked++;
      }
      sink.channel.meter.add(bytes);
      if (sink.channel.readerCount > 0) sink.channel.publish((copy ??= Buffer.from(chunk)));
    }
    return this.blocked === 0;
  }

  private unblock(): void {
    if (--this.blocked === 0 && !this.ended) this.source.resume();
  }

  private lose(sink: Sink): void {
    if (!sink.alive) return;
    sink.alive = false;
    this.live--;
    if (sink.blocked) {
      sink.blocked = false;
      this.blocked--;
    }
    if (this.live === 0) {
      // Nobody reads this output any more: close the pipe's read end, the writer gets SIGPIPE.
      this.ended = true;
      this.source.destroy();
    } else if (this.blocked === 0 && !this.ended) {
      this.source.resume();
    }
  }

  private endSinks(): void {
    this.ended = true;
    if (this.sinksEnded) return;
    this.sinksEnded = true;
    for (const sink of this.sinks) if (sink.alive) sink.socket.end();
  }
}
