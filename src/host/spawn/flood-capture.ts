import type { CaptureHandle, SpawnerAddon } from './native-addon.js';
import type { CaptureRing } from './spawner.js';

type RingAddon = Required<Pick<SpawnerAddon, 'captureStart' | 'captureDrain' | 'captureStop'>>;

/**
 * A captured output whose writer floods it, read by a thread of the addon's instead of the
 * runtime's loop (native/capture-ring.c). A pipe wakes a polling reader on every write of its
 * writer: a flood woke the loop's thread ~10k times per GiB, on the thread that runs every
 * actor, and the writer stalled whenever that thread was late. The addon's thread paces its
 * reads (about half a pipe each) and keeps the last `capacity` bytes; the ring pulls them in
 * when it is read (logs, ps, the inspector) and shows what it would have had it read every byte.
 *
 * Only while nothing else wants the bytes: a 'data' listener (log files, a readiness probe)
 * needs every byte, so it brings the stream back to reading (leave) before it is added.
 */
export class FloodCapture {
  private handle: CaptureHandle | null = null;
  /** The addon said no once (no pipe that large, too many floods): the stream reads on, for good. */
  private refused = false;

  private constructor(
    private readonly addon: RingAddon,
    private readonly fd: number,
    private readonly ring: CaptureRing,
    /** The thread saw the end (or could not read): the stream reads on, and reads the end. */
    private readonly onEnd: () => void,
  ) {}

  /** Null when the addon has no capture ring (built before it): the stream reads every byte. */
  static for(addon: SpawnerAddon, fd: number, ring: CaptureRing, onEnd: () => void): FloodCapture | null {
    if (!addon.captureStart || !addon.captureDrain || !addon.captureStop) return null;
    return new FloodCapture(addon as RingAddon, fd, ring, onEnd);
  }

  get active(): boolean {
    return this.handle !== null;
  }

  /** Hands the reading to the addon's thread; the caller stops reading its descriptor now. */
  enter(): boolean {
    if (this.handle || this.refused || this.ring.capacity === 0) return false;
    this.handle = this.addon.captureStart(this.fd, this.ring.capacity, () => {
      this.leave();
      this.onEnd();
    });
    if (!this.handle) {
      this.refused = true;
      return false;
    }
    this.ring.keepOutside(() => this.pull());
    return true;
  }

  /** Takes the reading back: the ring gets what the thread kept, the caller reads on from there. */
  leave(): void {
    const handle = this.handle;
    if (!handle) return;
    this.handle = null;
    this.ring.keepOutside(null);
    const [last, taken] = this.addon.captureStop(handle);
    if (taken > 0) this.ring.absorb(last, taken);
  }

  private pull(): void {
    if (!this.handle) return;
    const [last, taken] = this.addon.captureDrain(this.handle);
    if (taken > 0) this.ring.absorb(last, taken);
  }
}
