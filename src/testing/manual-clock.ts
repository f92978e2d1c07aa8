import type { RuntimeClock } from '../host/runtime.js';

/**
 * A clock that moves only when told to. Hand it to `createRuntime({ clock })`: backoffs,
 * grace periods and TTLs then wait for `advance()` instead of real time.
 */
export class ManualClock implements RuntimeClock {
  readonly manual = true;
  private current: number;
  private readonly listeners = new Set<(now: number) => Promise<void>>();

  constructor(start = Date.now()) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  /** Moves time forward; resolves once every runtime on this clock has fired its due timers. */
  async advance(ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`advance(ms) needs a finite ms >= 0 (got ${ms})`);
    this.current += ms;
    await Promise.all([...this.listeners].map((listener) => listener(this.current)));
  }

  onAdvance(listener: (now: number) => Promise<void>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
