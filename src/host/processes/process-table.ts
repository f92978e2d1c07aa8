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
  /**
   * What said it was ready, for a probe that says so once (a line, READY=1): told again to an
   * actor re-hosted after its thread died, which may not have heard it (core/rehosting.ts).
   */
  saidReady?: string;
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
 * Ended runs kept per command (and per pipeline node), beside every run still alive or not yet
 * settled. A command in a crash loop starts a run every backoff: kept without a bound, a daemon's
 * table (and every ring each run holds) would grow for as long as it lives. `describe` shows the
 * last 10 runs; the log files, not the table, are the long history.
 */
export const ENDED_RUNS_KEPT = 10;

/**
 * Every process the host started, by run id and by workspace. The host and the reaper write
 * it; the runtime reads it. Old ended runs are let go (ENDED_RUNS_KEPT).
 */
export class ProcessTable {
  private readonly runs = new Map<string, RunEntry>();
  private readonly runsByWorkspace = new Map<string, RunEntry[]>();
  /** Runs of one command of one workspace, oldest first: where the ones past the bound are found. */
  private readonly runsByCommand = new Map<string, RunEntry[]>();
  /** Workspaces whose list still holds runs of commands forgotten since (removeCommand). */
  private readonly staleIn = new Set<string>();
  /** Runs of commands whose actor has not been seen to hear their exit yet, by command key. */
  private readonly unheardByKey = new Map<string, RunEntry[]>();

  add(
    run: Omit<RunEntry, 'alive' | 'exit' | 'reason' | 'outputEnded' | 'outputDone' | 'heard' | 'exited' | 'stdout' | 'stderr'>,
    logBufferBytes: number,
  ): RunEntry {
    // Every field named, in one order: one object shape for every run (a spread of `run` made V8
    // build its hidden class anew at each one). A Slurm run's node comes last.
    const entry: { -readonly [K in keyof RunEntry]: RunEntry[K] } = {
      id: run.id,
      key: run.key,
      wsId: run.wsId,
      label: run.label,
      pid: run.pid,
      restarts: run.restarts,
      startedAt: run.startedAt,
      pipelineId: run.pipelineId,
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
    if (run.node !== undefined) entry.node = run.node;
    this.runs.set(entry.id, entry);
    let list = this.runsByWorkspace.get(entry.wsId);
    if (!list) this.runsByWorkspace.set(entry.wsId, (list = []));
    list.push(entry);
    const commandKey = `${entry.wsId}/${entry.key}`;
    let ofCommand = this.runsByCommand.get(commandKey);
    if (!ofCommand) this.runsByCommand.set(commandKey, (ofCommand = []));
    ofCommand.push(entry);
    // Trimmed at twice the bound, back down to it: a workspace's list is rebuilt once per
    // ENDED_RUNS_KEPT runs, not at every run.
    if (ofCommand.length > 2 * ENDED_RUNS_KEPT) this.trim(entry.wsId, commandKey, ofCommand);
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

  /** Lets go of the command's oldest runs that are over: ended, read to the end, heard by their actor. */
  private trim(wsId: string, commandKey: string, ofCommand: RunEntry[]): void {
    let over = ofCommand.filter(isSettled).length - ENDED_RUNS_KEPT;
    if (over <= 0) return;
    const dropped = new Set<RunEntry>();
    for (const run of ofCommand) {
      if (over === 0) break;
      if (!isSettled(run)) continue;
      dropped.add(run);
      this.runs.delete(run.id);
      over--;
    }
    this.runsByCommand.set(commandKey, ofCommand.filter((run) => !dropped.has(run)));
    this.runsByWorkspace.set(wsId, (this.runsByWorkspace.get(wsId) ?? []).filter((run) => !dropped.has(run)));
  }

  /** Every run of the command is over: ended, read to the end, heard by its actor. */
  settled(wsId: string, key: string): boolean {
    return (this.runsByCommand.get(`${wsId}/${key}`) ?? []).every(isSettled);
  }

  get(runId: string): RunEntry | undefined {
    return this.runs.get(runId);
  }

  /** In creation order, which is id order (monotonic ULIDs). */
  ofWorkspace(wsId: string): readonly RunEntry[] {
    const list = this.runsByWorkspace.get(wsId);
    if (!list) return [];
    if (!this.staleIn.delete(wsId)) return list;
    const kept = list.filter((run) => this.runs.get(run.id) === run);
    this.runsByWorkspace.set(wsId, kept);
    return kept;
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

  /**
   * Forgets every run of one command (a command removed from its workspace); returns their ids.
   * Its workspace's list is compacted at its next read, once for every command forgotten
   * meanwhile: the keepFinished bound forgets an eighth of it at a time, and a filter of the
   * workspace's runs per command made that quadratic (~5% of the main thread past the bound).
   */
  removeCommand(wsId: string, key: string): string[] {
    const commandKey = `${wsId}/${key}`;
    const ofCommand = this.runsByCommand.get(commandKey);
    this.runsByCommand.delete(commandKey);
    if (!ofCommand) return [];
    const removed: string[] = [];
    for (const run of ofCommand) {
      this.hear(run);
      this.runs.delete(run.id);
      removed.push(run.id);
    }
    if (removed.length > 0) this.staleIn.add(wsId);
    return removed;
  }

  /** The workspace is gone: no actor of it will hear anything more. */
  removeWorkspace(wsId: string): void {
    for (const run of this.runsByWorkspace.get(wsId) ?? []) {
      this.hear(run);
      this.runs.delete(run.id);
      this.runsByCommand.delete(`${wsId}/${run.key}`);
    }
    this.runsByWorkspace.delete(wsId);
    this.staleIn.delete(wsId);
  }
}

function isSettled(run: RunEntry): boolean {
  return !run.alive && run.outputDone && run.heard;
}

/** Resolves the run's `exited` once both are known: its exit, and the end of its output. */
export function settleExited(run: RunEntry): void {
  if (run.exit && run.outputDone) run.exited.resolve(run.exit);
}
