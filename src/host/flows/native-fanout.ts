import type net from 'node:net';
import type { SpawnerAddon } from '../spawn/native-addon.js';

/** A native flow fanout (an opaque external). */
export type FanoutHandle = { readonly __fanout: unique symbol };

/** The addon's fanout (native/flow-fanout.c); absent from an addon built before it. */
interface FanoutAddon {
  fanoutOpen(onEnd: () => void): FanoutHandle | null;
  fanoutTapFd(fanout: FanoutHandle): number;
  fanoutAdd(fanout: FanoutHandle, socketFd: number): number;
  fanoutRemove(fanout: FanoutHandle, id: number): void;
  fanoutDropped(fanout: FanoutHandle): number;
  fanoutClose(fanout: FanoutHandle): void;
}

/** Opens a channel's fanout; null when none can be had (its readers are fed from JavaScript). */
export type FanoutOpener = () => ReaderFanout | null;

/** The fanout opener of an addon that has one; null otherwise. */
export function fanoutOpenerFor(addon: SpawnerAddon): FanoutOpener | null {
  const fanouts = addon as SpawnerAddon & Partial<FanoutAddon>;
  if (!fanouts.fanoutOpen || !fanouts.fanoutTapFd || !fanouts.fanoutAdd || !fanouts.fanoutRemove || !fanouts.fanoutDropped || !fanouts.fanoutClose) return null;
  return () => ReaderFanout.open(fanouts as FanoutAddon);
}

/** The descriptor under a connected net.Socket (libuv's pipe handle keeps it as `fd`). */
function socketFd(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}

/**
 * A flow channel's readers fed by a thread of the addon's (native/flow-fanout.c): the edge's
 * pumps tee its bytes into the fanout's pipe (tapFd), the thread writes them to every reader's
 * socket. The bytes a reader gets never enter JavaScript; the runtime's loop is not woken by
 * them. A reader that falls 4 MiB behind is dropped there (its connection shut down), as the
 * JS channel drops it.
 */
export class ReaderFanout {
  private readonly ids = new Map<net.Socket, number>();
  private dropped = 0;
  private onEnd: (() => void) | null = null;

  private constructor(
    private readonly addon: FanoutAddon,
    private handle: FanoutHandle | null,
  ) {}

  static open(addon: FanoutAddon): ReaderFanout | null {
    let fanout: ReaderFanout | null = null;
    const handle = addon.fanoutOpen(() => fanout?.ended());
    if (!handle) return null;
    fanout = new ReaderFanout(addon, handle);
    return fanout;
  }

  /** Feeds `socket` from now on; false when it cannot be (the caller feeds it, or lets it go). */
  add(socket: net.Socket): boolean {
    const fd = socketFd(socket);
    if (!this.handle || fd < 0) return false;
    const id = this.addon.fanoutAdd(this.handle, fd);
    if (id < 0) return false;
    this.ids.set(socket, id);
    return true;
  }

  /** The reader left; true when the fanout had dropped it for falling behind. */
  remove(socket: net.Socket): boolean {
    const id = this.ids.get(socket);
    if (id === undefined) return false;
    this.ids.delete(socket);
    if (!this.handle) return false;
    this.addon.fanoutRemove(this.handle, id);
    const dropped = this.addon.fanoutDropped(this.handle);
    const fellBehind = dropped > this.dropped;
    this.dropped = dropped;
    return fellBehind;
  }

  has(socket: net.Socket): boolean {
    return this.ids.has(socket);
  }

  /** A new write end of the fanout's pipe for a pump's tap (the pump owns it); -1 once closing. */
  tapFd(): number {
    return this.handle ? this.addon.fanoutTapFd(this.handle) : -1;
  }

  /**
   * The channel is over: once every pump closed its tap, the readers get what is left (a second
   * at most), their connections are ended, then `onEnd`.
   */
  close(onEnd: () => void): void {
    if (!this.handle) return onEnd();
    this.onEnd = onEnd;
    this.addon.fanoutClose(this.handle);
  }

  private ended(): void {
    this.handle = null;
    this.ids.clear();
    const onEnd = this.onEnd;
    this.onEnd = null;
    onEnd?.();
  }
}
