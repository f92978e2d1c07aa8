import { closeSync } from 'node:fs';
import net from 'node:net';
import type { Logger } from 'pino';
import type { PumpHandle, SpawnerAddon } from '../spawn/native-addon.js';
import { NativeSpawner } from '../spawn/native-spawner.js';
import type { Spawner } from '../spawn/spawner.js';
import { jsPumpFactory, type EdgePump, type PumpFactory, type PumpSink } from './flow-pump.js';
import { fanoutOpenerFor } from './native-fanout.js';

/** How often the pump's byte counts are brought into the edges' meters (their rate buckets are 100 ms). */
const METER_SYNC_MS = 100;

/**
 * Every tap on this thread reads into this buffer: a read is copied for the flow readers (their
 * sockets may keep it queued) before the next read.
 */
const TAP_READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

type PumpAddon = Required<Pick<SpawnerAddon, 'pumpStart' | 'pumpBytes' | 'pumpTap' | 'pumpDestroy' | 'pipe'>>;

/**
 * The native pump with the native spawner, when its addon has it (an addon built before the
 * pump was added lacks it: rebuild with `npm run install`); the JS pump otherwise — with
 * child_process (SHUMA_SPAWNER=node, or no addon), the JS path is the data plane.
 */
export function pumpFactoryFor(spawner: Spawner): PumpFactory {
  const addon = spawner instanceof NativeSpawner ? spawner.addon : null;
  if (!addon?.pumpStart || !addon.pumpBytes || !addon.pumpTap || !addon.pumpDestroy || !addon.pipe) return jsPumpFactory;
  const pumps = addon as PumpAddon;
  const factory = (sourceFd: number, sinks: readonly PumpSink[], logger: Logger) => new NativePump(pumps, sourceFd, sinks, logger);
  const openFanout = fanoutOpenerFor(addon);
  return openFanout ? Object.assign(factory, { openFanout }) : factory;
}

/** A sink's tap: the channel's native fanout (no JavaScript on the way), or a pipe read here. */
type Tap = 'fanout' | net.Socket;

/**
 * One node's output pumped to its readers by the addon (native/flow-pump.c), with the semantics
 * of the JS FlowPump: backpressure, SIGPIPE upstream once no reader is left, end of input passed
 * on. The bytes never enter JavaScript: while an edge has flow-socket readers, the addon tees
 * its bytes into the pipe of the channel's fanout, whose thread writes them to the readers'
 * sockets (native-fanout.ts). The addon pumps the edge on a thread of its own, which never
 * wakes this loop (at most 32 such threads; beyond, on this loop).
 *
 * Without a fanout (none could be had) the old way: the tap pipe is read here and published,
 * and the edge is pumped on this loop, so the tap is read at the pace it is filled.
 *
 * Backpressure toward flow readers: the addon waits for room in the tap pipe (the runtime's own
 * read, one pipe's capacity), never for a reader; a reader that falls behind by more than
 * READER_MAX_BUFFERED is dropped by its channel, as with the JS pump.
 */
class NativePump implements EdgePump {
  private readonly handle: PumpHandle;
  /** Bytes of each sink already added to its meter. */
  private readonly metered: number[];
  private readonly taps: Array<Tap | null>;
  private readonly timer: NodeJS.Timeout;
  private ended = false;

  constructor(
    private readonly addon: PumpAddon,
    sourceFd: number,
    private readonly sinks: readonly PumpSink[],
    private readonly logger: Logger,
  ) {
    this.metered = sinks.map(() => 0);
    this.taps = sinks.map(() => null);
    // Readers already attached (a restarted attempt) are tapped from the first byte: the
    // addon's thread starts pumping as soon as pumpStart returns.
    const tapFds = sinks.map((sink, i) => (sink.channel.readerCount > 0 ? (this.openTap(i) ?? -1) : -1));
    const jsTaps = this.taps.some((tap) => tap !== null && tap !== 'fanout');
    try {
      this.handle = addon.pumpStart(
        sourceFd,
        sinks.map((sink) => sink.fd),
        () => this.finish(),
        tapFds,
        !jsTaps,
      );
    } catch (error) {
      // Refused (out of memory): the taps opened for it go; the caller logs the pump's failure.
      for (const fd of tapFds) if (fd >= 0) closeSync(fd);
      for (const tap of this.taps) if (tap !== 'fanout') tap?.destroy();
      throw error;
    }
    this.timer = setInterval(() => this.sync(), METER_SYNC_MS);
    this.timer.unref();
    sinks.forEach((sink, i) => {
      sink.channel.onReaders = (count) => this.wantTap(i, count > 0);
    });
  }

  sync(): void {
    if (this.ended) return;
    const bytes = this.addon.pumpBytes(this.handle);
    this.sinks.forEach((sink, i) => {
      const fresh = bytes[i]! - this.metered[i]!;
      if (fresh > 0) sink.channel.meter.add(fresh);
      this.metered[i] = bytes[i]!;
    });
  }

  destroy(): void {
    if (this.ended) return;
    this.sync();
    this.addon.pumpDestroy(this.handle);
    this.end();
  }

  /** The source ended, or no reader is left: the addon closed everything. */
  private finish(): void {
    this.sync();
    this.end();
  }

  private end(): void {
    this.ended = true;
    clearInterval(this.timer);
    for (const sink of this.sinks) if (sink.channel.onReaders) sink.channel.onReaders = null;
    // The tap sockets read what is left in their pipes (the addon closed the write ends), then end.
  }

  private wantTap(i: number, wanted: boolean): void {
    const tap = this.taps[i];
    if (!wanted) {
      if (!tap) return;
      this.taps[i] = null;
      if (!this.ended) this.addon.pumpTap(this.handle, i, -1, tap === 'fanout');
      if (tap !== 'fanout') tap.destroy();
      return;
    }
    if (tap || this.ended) return;
    const writeFd = this.openTap(i);
    if (writeFd === null) return;
    const onThread = this.taps[i] === 'fanout';
    if (!this.addon.pumpTap(this.handle, i, writeFd, onThread) && !onThread) (this.taps[i] as net.Socket | null)?.destroy();
  }

  /**
   * Sink i's tap: a write end of its channel's fanout pipe, or else a tap pipe read into its
   * channel here. The write end, for the addon (null: none could be had).
   */
  private openTap(i: number): number | null {
    const channel = this.sinks[i]!.channel;
    if (channel.fanout) {
      const fd = channel.fanout.tapFd();
      if (fd < 0) return null;
      this.taps[i] = 'fanout';
      return fd;
    }
    let fds: [number, number];
    try {
      fds = this.addon.pipe();
    } catch (error) {
      // Out of descriptors: the edge goes on, its readers get nothing until the next change.
      this.logger.warn({ edge: channel.edge, err: (error as Error).message }, 'could not open a tap pipe for flow readers');
      return null;
    }
    const [readFd, writeFd] = fds;
    // Until the tap's pipe is read to its end, the channel keeps its readers (bytes that crossed
    // before the pipeline ended are still on their way to them).
    const release = channel.hold();
    const options: net.SocketConstructorOpts & { onread: net.OnReadOpts } = {
      fd: readFd,
      readable: true,
      writable: false,
      onread: {
        buffer: TAP_READ_BUFFER,
        callback: (bytes: number, into: Uint8Array) => {
          channel.publish(Buffer.from(into.subarray(0, bytes)));
          return true;
        },
      },
    };
    const socket = new net.Socket(options);
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.logger.warn({ edge: channel.edge, err: error.message, code: error.code }, 'flow tap read error');
    });
    socket.on('close', () => {
      release();
      if (this.taps[i] === socket) this.taps[i] = null;
    });
    this.taps[i] = socket;
    return writeFd;
  }
}
