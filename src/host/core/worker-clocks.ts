import type { WorkerPool } from '../workers/worker-pool.js';

// A manual clock moved by hand (shuma/testing) moves every worker's simulated clock: the move
// is over once each worker fired its due timers and said so.

export class WorkerClocks {
  private seq = 0;
  /** Moves waiting for every worker's acknowledgement, by sequence number. */
  private readonly pending = new Map<number, { left: number; done: () => void }>();

  constructor(private readonly pool: WorkerPool) {}

  /** Every worker's clock set to `time`; resolves once each acknowledged. */
  move(time: number): Promise<void> {
    const seq = ++this.seq;
    return new Promise((done) => {
      this.pending.set(seq, { left: this.pool.size, done });
      this.pool.broadcast({ type: 'clock', now: time, seq });
    });
  }

  /** A worker's acknowledgement of move `seq`. */
  acknowledged(seq: number): void {
    const pending = this.pending.get(seq);
    if (pending && --pending.left === 0) {
      this.pending.delete(seq);
      pending.done();
    }
  }

  /** The workers are going away: nobody waits for them any more. */
  releaseAll(): void {
    for (const pending of this.pending.values()) pending.done();
    this.pending.clear();
  }
}
