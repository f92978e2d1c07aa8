import { deferred, type Deferred } from './deferred.js';
import type { ExitInfo } from './exit-info.js';
import { LogRing } from './log-ring.js';

/** 'node-lost': the Slurm node it ran on left the allocation (slurmd gone, node down). */
export type RunReason = 'oom' | 'exit-unknown' | 'node-lost' | 'unhealthy' | 'startTimeout' | null;

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
  /** Its output pipes closed: everything it wrote was read. */
  outputEnded: boolean;
  /** Its output was read to the end, or the wait for the end was cut short (a descendant kept the pipes). */
  outputDone: boolean;
  /**
   * The actor that owns it has been seen (in its mirrored snapshot) to know how it ended; until
   * then, reads of the actor (why(), getSnapshot()) wait for it (core/caught-up.ts).
   */
  heard: boolean;
  /** Settles once the run exited and its output was read (its actor is told at the exit). */
  readonly exited: Deferred<ExitInfo>;
}

/**
 * Every process the host started, by run id and by workspace. The host and the reaper write
 * it; the runtime reads it.
 */
export class ProcessTable {
  private readonly runs = new Map<string, RunEntry>();
  private readonly runsByWorkspace = new Map<string, RunEntry[]>();
  /** Runs of commands whose actor has not been seen to hear their exit yet, by command key. */
  private readonly unheardByKey = new Map<string, RunEntry[]>();

  add(
    run: Omit<RunEntry, 'alive' | 'exit' | 'reason' | 'outputEnded' | 'outputDone' | 'heard' | 'exited' | 'stdout' | 'stderr'>,
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
      outputDone: false,
      // A pipeline's node has no handle that awaits its exit: nobody waits for its actor.
      heard: run.pipelineId !== undefined,
      exited: deferred<ExitInfo>(),
    };
    this.runs.set(entry.id, entry);
    let list = this.runsByWorkspace.get(entry.wsId);
    if (!list) this.runsByWorkspace.set(entry.wsId, (list = []));
    list.push(entry);
    if (!entry.heard) {
      let unheard = this.unheardByKey.get(entry.key);
      if (!unheard) this.unheardByKey.set(entry.key, (unheard = []));
      unheard.push(entry);
    }
    return entry;
  }

  /** The runs of a command whose exit its actor has not been seen to hear yet (oldest first). */
  unheard(key: string): readonly RunEntry[] {
    return this.unheardByKey.get(key) ?? [];
  }

  /** The run's actor knows how it ended (or is gone). */
  hear(run: RunEntry): void {
    if (run.heard) return;
    run.heard = true;
    const unheard = this.unheardByKey.get(run.key)?.filter((other) => other !== run) ?? [];
    if (unheard.length > 0) this.unheardByKey.set(run.key, unheard);
    else this.unheardByKey.delete(run.key);
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

  /** Forgets every run of one command (a command removed from its workspace). */
  removeCommand(wsId: string, key: string): void {
    const list = this.runsByWorkspace.get(wsId);
    if (!list) return;
    for (const run of list) {
      if (run.key !== key) continue;
      this.hear(run);
      this.runs.delete(run.id);
    }
    this.runsByWorkspace.set(wsId, list.filter((run) => run.key !== key));
  }

  /** The workspace is gone: no actor of it will hear anything more. */
  removeWorkspace(wsId: string): void {
    for (const run of this.runsByWorkspace.get(wsId) ?? []) {
      this.hear(run);
      this.runs.delete(run.id);
    }
    this.runsByWorkspace.delete(wsId);
  }
}

/** Resolves the run's `exited` once both are known: its exit, and the end of its output. */
export function settleExited(run: RunEntry): void {
  if (run.exit && run.outputDone) run.exited.resolve(run.exit);
}
