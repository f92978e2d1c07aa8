import type { WorkspaceStats } from '../../protocol/stats.js';

// A workspace's last samples, kept compactly. A sample taken every second for 10,000 idle
// workspaces, 64 kept each, was ~7 KiB per workspace of objects alike but for their time. Here
// the times are a packed array of doubles and the rest of a sample is shared with the sample
// before it when nothing else changed; a whole sample is made again when it is read.

type SampleRest = Omit<WorkspaceStats, 'at'>;

export class StatsHistory {
  private readonly ats: number[] = [];
  private readonly rests: SampleRest[] = [];

  constructor(private readonly capacity: number) {}

  get length(): number {
    return this.ats.length;
  }

  push(stats: WorkspaceStats): void {
    const { at, ...rest } = stats;
    const last = this.rests[this.rests.length - 1];
    this.ats.push(at);
    this.rests.push(last !== undefined && sameRest(last, rest) ? last : rest);
    if (this.ats.length > this.capacity) {
      this.ats.shift();
      this.rests.shift();
    }
  }

  /** The last `tail` samples (all when 0), oldest first. */
  read(tail: number): WorkspaceStats[] {
    const from = tail > 0 ? Math.max(0, this.ats.length - tail) : 0;
    const out: WorkspaceStats[] = [];
    for (let i = from; i < this.ats.length; i++) out.push({ at: this.ats[i]!, ...this.rests[i]! });
    return out;
  }
}

function sameRest(a: SampleRest, b: SampleRest): boolean {
  const keys = Object.keys(a) as Array<keyof SampleRest>;
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) if (!Object.is(a[key], b[key])) return false;
  return true;
}
