import type { Logger } from 'pino';
import { serializeError } from '../../../protocol/errors.js';
import { cancelJob, jobState } from './job-control.js';
import type { SlurmCluster } from './slurm-cli.js';
import { sampleSteps } from './step-stats.js';

/** How often a live job is looked at: its nodes (one lost ends its steps there) and its steps' use. */
const WATCH_MS = 1000;

/**
 * One Slurm-placed workspace's job: the nodes it was given, those it lost since, and the last
 * sample of its steps. Watched while it lives, so that a node that leaves the allocation (its
 * slurmd gone, the node set DOWN) is known before the exits of the steps that ran there are read.
 */
export class SlurmJob {
  private readonly lost = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private looking = false;
  private sample: { rssBytes: number | null; cpuUsec: number | null } = { rssBytes: null, cpuUsec: null };
  private ending: Promise<void> | null = null;
  /** What ws.placement shows: the job and the nodes it holds now. */
  readonly info: { kind: 'slurm'; jobId: string; nodes: string[] };

  constructor(
    readonly cluster: SlurmCluster,
    readonly jobId: string,
    /** Every node the allocation was given. */
    readonly nodes: readonly string[],
    private readonly logger: Logger,
    private readonly onLost: (nodes: string[]) => void,
    /** The local salloc that asked for the job has ended (it may still be ending when the job is granted). */
    private readonly settled: Promise<void> = Promise.resolve(),
  ) {
    this.info = { kind: 'slurm', jobId, nodes: [...nodes] };
  }

  isLost(node: string): boolean {
    return this.lost.has(node) || !this.nodes.includes(node);
  }

  liveNodes(): string[] {
    return this.nodes.filter((node) => !this.lost.has(node));
  }

  usage(): { rssBytes: number | null; cpuUsec: number | null } {
    return this.sample;
  }

  /** Nodes that left the allocation: no step starts there again. */
  markLost(nodes: readonly string[]): void {
    const newlyLost = nodes.filter((node) => this.nodes.includes(node) && !this.lost.has(node));
    if (newlyLost.length === 0) return;
    for (const node of newlyLost) this.lost.add(node);
    this.info.nodes = this.liveNodes();
    this.onLost(newlyLost);
  }

  /**
   * `lookNow`: for a job found again after a restart, whose nodes may have gone meanwhile. A job
   * just granted is first looked at a period later: its node list is fresh, and a client call
   * now would only compete with the hosting of its workspace.
   */
  watch(lookNow: boolean): void {
    if (this.timer || this.ending) return;
    this.timer = setInterval(() => void this.look(), WATCH_MS);
    this.timer.unref();
    if (lookNow) void this.look();
  }

  stopWatching(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Once: the job cancelled and gone from squeue, and no local process of it left. */
  end(): Promise<void> {
    this.stopWatching();
    this.ending ??= Promise.all([cancelJob(this.cluster, this.jobId), this.settled]).then(() => undefined);
    return this.ending;
  }

  private async look(): Promise<void> {
    if (this.looking || this.ending) return;
    this.looking = true;
    try {
      const state = await jobState(this.cluster, this.jobId);
      if (this.ending) return;
      const held = new Set(state.state === null ? [] : state.nodes);
      this.markLost(this.liveNodes().filter((node) => !held.has(node)));
      const steps = await sampleSteps(this.cluster, this.jobId);
      const rss = steps.map((s) => s.rssBytes).filter((v): v is number => v !== null);
      const cpu = steps.map((s) => s.cpuUsec).filter((v): v is number => v !== null);
      this.sample = {
        rssBytes: steps.length === 0 ? 0 : rss.length === 0 ? null : rss.reduce((a, b) => a + b, 0),
        cpuUsec: steps.length === 0 ? this.sample.cpuUsec : cpu.length === 0 ? null : cpu.reduce((a, b) => a + b, 0),
      };
    } catch (error) {
      // The controller did not answer this time: nothing is known to be lost; look again.
      this.logger.debug({ job: this.jobId, err: serializeError(error) }, 'could not look at a Slurm job');
    } finally {
      this.looking = false;
    }
  }
}
