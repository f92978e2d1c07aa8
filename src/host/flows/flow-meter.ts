/**
 * Counts the bytes of one flow: the total, and the rate over a sliding window of the last
 * few seconds, kept in small time buckets (constant memory, O(1) per chunk).
 */
export class FlowMeter {
  static readonly WINDOW_MS = 5_000;
  private static readonly BUCKET_MS = 100;
  private static readonly BUCKETS = FlowMeter.WINDOW_MS / FlowMeter.BUCKET_MS;

  private readonly buckets = new Float64Array(FlowMeter.BUCKETS);
  /** Index (time / BUCKET_MS) of the newest bucket written or cleared. */
  private head: number;
  private readonly startedAt: number;
  /** Every byte since the flow opened. */
  bytes = 0;

  constructor(private readonly now: () => number) {
    this.startedAt = now();
    this.head = Math.floor(this.startedAt / FlowMeter.BUCKET_MS);
  }

  add(count: number): void {
    const index = this.roll();
    this.bytes += count;
    this.buckets[index % FlowMeter.BUCKETS]! += count;
  }

  /**
   * Bytes per second over the window, or over the flow's life while it is younger than the
   * window (a flow that ran 1 s at 1 GB/s reads 1 GB/s, not a fifth of it).
   */
  perSecond(): number {
    this.roll();
    let sum = 0;
    for (const bucket of this.buckets) sum += bucket;
    const span = Math.min(FlowMeter.WINDOW_MS, Math.max(FlowMeter.BUCKET_MS, this.now() - this.startedAt));
    return (sum * 1000) / span;
  }

  /** Clears the buckets that slid out of the window since the last call; returns the current one. */
  private roll(): number {
    const index = Math.floor(this.now() / FlowMeter.BUCKET_MS);
    if (index > this.head) {
      const stale = Math.min(index - this.head, FlowMeter.BUCKETS);
      for (let i = 1; i <= stale; i++) this.buckets[(this.head + i) % FlowMeter.BUCKETS] = 0;
      this.head = index;
    }
    // A clock that went back (a manual one in tests) counts into the newest bucket.
    return this.head;
  }
}
