import type { Logger } from 'pino';
import { serializeError } from '../../protocol/errors.js';
import type { QuotaBreachEvent } from '../../protocol/machine-events.js';
import type { QuotaAction } from '../../protocol/specs.js';
import type { ProcessTable } from '../processes/process-table.js';
import type { Registry, WorkspaceEntry } from '../registry/registry.js';
import { Mailbox } from './mailbox.js';
import { StatsHistory } from './stats-history.js';
import { breachText, forksRefusedText, type QuotaReport, type QuotaResource, type WorkspaceStats } from '../../protocol/stats.js';

export const STATS_HISTORY = 64;

export interface QuotaActorDeps {
  registry: Registry;
  table: ProcessTable;
  logger: Logger;
  now: () => number;
  /** Background sampling period; 0: sample only when asked (stats(), quota()). */
  intervalMs: number;
  /** A limit was crossed, once per episode, for a resource whose action is not 'none'. */
  onBreach: (ws: WorkspaceEntry, breach: QuotaBreachEvent) => void;
  /** The workspace's use now, measured where its processes run (its placement). */
  usage: (ws: WorkspaceEntry) => WorkspaceUsage;
  /** Something the user should know (the runtime's warnings): here, sampling that failed. */
  warn: (message: string) => void;
}

/** One measure of a workspace's processes, as its placement takes it. */
export interface WorkspaceUsage {
  source: WorkspaceStats['source'];
  rssBytes: number | null;
  cpuUsec: number | null;
  /** Per-process CPU, when known: a rate is then taken over the processes present in two samples. */
  cpuByPid: Map<number, number> | null;
  processes: number;
  /** Forks refused at the cgroup's pids limit (pids.events `max`); null where not counted. */
  forksRefused: number | null;
}

interface Usage extends WorkspaceUsage {
  at: number;
}

/** What the quota actor hears: its timer, samples taken (by it or for stats()), workspaces gone. */
type QuotaMessage =
  | { type: 'tick' }
  | { type: 'sampled'; ws: WorkspaceEntry; usage: Usage; reply: (stats: WorkspaceStats) => void }
  | { type: 'forget'; wsId: string };

interface WorkspaceQuotaState {
  history: StatsHistory;
  previous: Usage | null;
  /** Resources in breach at the last sample: a breach is reported when it starts, not every sample (made at the first). */
  breached: Set<QuotaResource> | null;
  /** pids.events `max` at the last sample: more since then means forks are being refused now. */
  forksRefusedSeen: number;
}

/**
 * The quota actor: samples every workspace's memory, CPU and processes (from its cgroup when
 * it has one, from /proc otherwise; in the background, only those where something runs), keeps each one's history, and reports limits crossed to
 * the workspace actor, which applies its policy.
 */
export class QuotaActor {
  private readonly mailbox = new Mailbox<QuotaMessage>((message) => this.handle(message));
  private readonly states = new Map<string, WorkspaceQuotaState>();
  private readonly timer: NodeJS.Timeout | undefined;
  /** Why the background sampling last failed, while it fails: one warning per episode, not per round. */
  private failing: string | null = null;

  constructor(private readonly deps: QuotaActorDeps) {
    if (deps.intervalMs > 0) {
      this.timer = setInterval(() => {
        try {
          this.mailbox.send({ type: 'tick' });
        } catch (error) {
          // The mailbox hands a handler's failure to the sender: from a timer, it would be uncaught.
          this.deps.logger.error({ err: serializeError(error) }, 'a quota round failed');
        }
      }, deps.intervalMs);
      // Sampling alone must not keep a process alive.
      this.timer.unref();
    }
  }

  /**
   * One background round. Reading /proc or a cgroup can fail for reasons of the runtime's own
   * (EMFILE when descriptors run out, ENOMEM): the round is skipped and said so, never thrown
   * from the timer, where it would end the whole runtime.
   */
  private sampleAll(): void {
    let failed: unknown = null;
    for (const ws of this.deps.registry.all()) {
      if (ws.hostStop || ws.failure || !this.mayChange(ws)) continue;
      try {
        this.measure(ws, () => undefined);
      } catch (error) {
        failed = error;
        break; // the rest would fail alike
      }
    }
    if (failed === null) {
      if (this.failing !== null) this.deps.logger.info({ after: this.failing }, 'stats sampling works again');
      this.failing = null;
      return;
    }
    const why = serializeError(failed);
    if (this.failing === null) {
      this.deps.warn(
        `stats sampling skipped a round (${why.message}): it tries again every ${this.deps.intervalMs} ms; until it succeeds, stats are stale and quota limits are not checked`,
      );
    } else {
      this.deps.logger.debug({ err: why }, 'stats sampling skipped a round');
    }
    this.failing = why.code ?? why.message;
  }

  /**
   * Whether a background round must measure the workspace. One that has nothing that could use
   * memory, CPU or processes (no live run, no process group not yet seen empty, no spawn under
   * way, no cgroup, nothing placed elsewhere) would only add the same empty sample again: of
   * 10,000 idle workspaces, that was ~220 ms of the main thread per round while they were made.
   * The sample after its last process ended is still taken (it ends a breach episode).
   */
  private mayChange(ws: WorkspaceEntry): boolean {
    if (ws.groups.size > 0 || ws.pendingSpawns > 0 || ws.cgroup !== null || ws.placementKind !== 'local') return true;
    if (this.deps.table.ofWorkspace(ws.id).some((run) => run.alive)) return true;
    const last = this.states.get(ws.id)?.previous;
    return last !== undefined && last !== null && last.processes > 0;
  }

  /** Takes a sample now, appends it to the history and checks the limits. */
  sample(ws: WorkspaceEntry): WorkspaceStats {
    let stats: WorkspaceStats | undefined;
    this.measure(ws, (taken) => (stats = taken));
    // Nothing the quota actor does asks for a sample from inside its own turn.
    if (!stats) throw new Error('a sample was asked from inside the quota actor: it would be answered later');
    return stats;
  }

  /** Measures where the workspace runs now; the sample comes back in as a message. */
  private measure(ws: WorkspaceEntry, reply: (stats: WorkspaceStats) => void): void {
    const usage: Usage = { at: this.deps.now(), ...this.deps.usage(ws) };
    this.mailbox.send({ type: 'sampled', ws, usage, reply });
  }

  private handle(message: QuotaMessage): void {
    switch (message.type) {
      case 'tick':
        this.sampleAll();
        return;
      case 'sampled':
        message.reply(this.record(message.ws, message.usage));
        return;
      case 'forget':
        this.states.delete(message.wsId);
        return;
    }
  }

  /** A sample appended to the history, the limits checked against it. */
  private record(ws: WorkspaceEntry, usage: Usage): WorkspaceStats {
    const state = this.stateOf(ws);
    const stats: WorkspaceStats = {
      at: usage.at,
      source: usage.source,
      rssBytes: usage.rssBytes,
      cpuUsec: usage.cpuUsec,
      cpuPercent: cpuPercent(state.previous, usage),
      processes: usage.processes,
      ...(usage.source === 'cgroup' ? { forksRefused: usage.forksRefused } : {}),
      commandsAlive: this.deps.table.aliveIn(ws).length,
      commandsTotal: this.deps.table.ofWorkspace(ws.id).length,
    };
    state.previous = usage;
    state.history.push(stats);
    this.checkLimits(ws, state, usage);
    return stats;
  }

  history(ws: WorkspaceEntry, tail: number): WorkspaceStats[] {
    return this.stateOf(ws).history.read(tail);
  }

  quota(ws: WorkspaceEntry): QuotaReport {
    const stats = this.sample(ws);
    const limits = ws.spec.limits ?? {};
    const breaches: string[] = [];
    if (limits.memoryBytes !== undefined && stats.rssBytes !== null && stats.rssBytes > limits.memoryBytes) {
      breaches.push(breachText('memory', stats.rssBytes, limits.memoryBytes));
    }
    const refused = stats.forksRefused ?? null;
    if (limits.nproc !== undefined && stats.processes > limits.nproc) {
      breaches.push(breachText('nproc', stats.processes, limits.nproc));
    } else if (limits.nproc !== undefined && refused !== null && refused > 0) {
      // pids.max holds the count at the limit: the forks it refused are the breach.
      breaches.push(forksRefusedText(stats.processes, limits.nproc, refused));
    }
    return {
      memLimit: limits.memoryBytes ?? null,
      nprocLimit: limits.nproc ?? null,
      breaches,
      oomKills: ws.oomKillsSeen,
      forksRefused: refused,
    };
  }

  forget(wsId: string): void {
    this.mailbox.send({ type: 'forget', wsId });
  }

  close(): void {
    clearInterval(this.timer);
    for (const wsId of [...this.states.keys()]) this.forget(wsId);
  }

  private stateOf(ws: WorkspaceEntry): WorkspaceQuotaState {
    let state = this.states.get(ws.id);
    if (!state) {
      state = { history: new StatsHistory(STATS_HISTORY), previous: null, breached: null, forksRefusedSeen: 0 };
      this.states.set(ws.id, state);
    }
    return state;
  }

  private checkLimits(ws: WorkspaceEntry, state: WorkspaceQuotaState, usage: Usage): void {
    const limits = ws.spec.limits ?? {};
    // With a cgroup's pids.max the count never exceeds the limit: forks refused since the last
    // sample are how a fork bomb shows.
    const refusing = usage.forksRefused !== null && usage.forksRefused > state.forksRefusedSeen;
    if (usage.forksRefused !== null) state.forksRefusedSeen = usage.forksRefused;
    const check = (resource: QuotaResource, used: number | null, limit: number | undefined, refused = false) => {
      const action: QuotaAction = ws.spec.quota?.[resource] ?? 'none';
      const inBreach = limit !== undefined && used !== null && (used > limit || refused);
      if (!inBreach) {
        state.breached?.delete(resource);
        return;
      }
      if (state.breached?.has(resource)) return;
      (state.breached ??= new Set()).add(resource);
      if (action === 'none') return;
      this.deps.onBreach(ws, {
        type: 'QUOTA_BREACH',
        at: usage.at,
        resource,
        used: used!,
        limit: limit!,
        action,
        message: used! > limit! ? breachText(resource, used!, limit!) : forksRefusedText(used!, limit!, usage.forksRefused ?? 0),
      });
    };
    check('memory', usage.rssBytes, limits.memoryBytes);
    check('nproc', usage.processes, limits.nproc, refusing);
  }
}

/** CPU use since the previous sample, 100 = one core busy the whole time. */
function cpuPercent(previous: Usage | null, current: Usage): number | null {
  if (!previous || current.at <= previous.at) return null;
  const wallUsec = (current.at - previous.at) * 1000;
  let used: number;
  if (current.cpuByPid && previous.cpuByPid) {
    // Only the processes present in both samples: one that exited took its time with it.
    used = 0;
    for (const [pid, cpu] of current.cpuByPid) {
      const before = previous.cpuByPid.get(pid);
      if (before !== undefined) used += Math.max(0, cpu - before);
    }
  } else {
    if (current.cpuUsec === null || previous.cpuUsec === null) return null;
    used = Math.max(0, current.cpuUsec - previous.cpuUsec);
  }
  return (used / wallUsec) * 100;
}
