import { deferred, type Deferred } from './deferred.js';
import type { ExitInfo } from './exit-info.js';
import { LogRing } from './log-ring.js';

/** 'node-lost': the Slurm node it ran on left the allocation (slurmd gone, node down). */
export type RunReason = 'oom' | 'exit-unknown' | 'node-lost' | null;

/** One process the host started: a run of a supervised command. */
export interface RunEntry {
  readonly id: string;
  readonly key: string;
  readonly wsId: string;
  readonly label: string;
  readonly pid: number;
  /** Relaunches of its command before this run. */
  readonly restarts: number;
  readonly startedAt: number;
  readonly stdout: LogRing;
  readonly stderr: LogRing;
  readonly pipelineId: string | undefined;
  alive: boolean;
  exit: ExitInfo | null;
  /**
   * Why it ended, when more is known than the status: 'oom' for the kernel's OOM killer;
   * 'exit-unknown' for a process adopted after a crash, whose status nobody could collect.
   */
  reason: RunReason;
  /** The Slurm node it runs on, for a Slurm-placed workspace. */
  readonly node?: string;
  outputEnded: boolean;
  /** Settles once the run exited and its output was read to the end. */
  readonly exited: Deferred<ExitInfo>;
}

/**
 * Every process the host started, by run id and by workspace. The host and the reaper write
 * it; the runtime reads it.
 */
export class ProcessTable {
  private readonly runs = new Map<string, RunEntry>();
  private readonly runsByWorkspace = new Map<string, RunEntry[]>();

  add(
    run: Omit<RunEntry, 'alive' | 'exit' | 'reason' | 'outputEnded' | 'exited' | 'stdout' | 'stderr'>,
    logBufferBytes: number,
  ): RunEntry {
    const entry: RunEntry = {
      ...run,
      stdout: new LogRing(logBufferBytes),
      stderr: new LogRing(logBufferBytes),
      alive: true,
      exit: null,
      reason: null,
      outputEnded: false,
      exited: deferred<ExitInfo>(),
    };
    this.runs.set(entry.id, entry);
    let list = this.runsByWorkspace.get(entry.wsId);
    if (!list) this.runsByWorkspace.set(entry.wsId, (list = []));
    list.push(entry);
    return entry;
  }

  get(runId: string): RunEntry | undefined {
    return this.runs.get(runId);
  }

  /** In creation order, which is id order (monotonic ULIDs). */
  ofWorkspace(wsId: string): readonly RunEntry[] {
    return this.runsByWorkspace.get(wsId) ?? [];
  }

  /** The runs of a workspace, or of one pipeline in it. */
  ofScope(scope: { kind: 'workspace' | 'pipeline'; id: string; wsId: string }): readonly RunEntry[] {
    const all = this.ofWorkspace(scope.wsId);
    return scope.kind === 'workspace' ? all : all.filter((run) => run.pipelineId === scope.id);
  }

  aliveIn(scope: { kind: 'workspace' | 'pipeline'; id: string; wsId: string }): RunEntry[] {
    return this.ofScope(scope).filter((run) => run.alive);
  }

  get aliveCount(): number {
    let count = 0;
    for (const run of this.runs.values()) if (run.alive) count++;
    return count;
  }

  removeWorkspace(wsId: string): void {
    for (const run of this.runsByWorkspace.get(wsId) ?? []) this.runs.delete(run.id);
    this.runsByWorkspace.delete(wsId);
  }
}
