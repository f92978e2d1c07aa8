import type { Logger } from 'pino';
import { serializeError } from '../../protocol/errors.js';
import type { ChildEvent } from '../../protocol/machine-events.js';
import { toExitInfo, type ExitInfo } from '../processes/exit-info.js';
import { groupMembers, isSameProcess, listProcesses, type ProcStat } from '../processes/proc.js';
import { settleExited, type ProcessTable, type RunEntry } from '../processes/process-table.js';
import { forgetReusedGroups } from '../processes/reused-groups.js';
import { signalGroup, signalIfSame } from '../processes/signals.js';
import type { Registry, StopResult, StopScope, WorkspaceEntry } from '../registry/registry.js';
import type { SpawnedProcess } from '../spawn/spawner.js';
import { Mailbox } from './mailbox.js';

/** How long `exited` waits for the output pipes to close after the exit, when a background
 * descendant keeps them open: past it, the run is over and its log is what was read. */
const OUTPUT_DRAIN_CAP_MS = 100;
/** Re-check of a stopping scope's groups: quick at first, then no more than 10 times a second. */
const FIRST_RECHECK_MS = 2;
const MAX_RECHECK_MS = 100;
/** How often an adopted process (not our child: no exit event) is looked for in /proc. */
const ADOPTED_POLL_MS = 100;

export interface ReaperDeps {
  registry: Registry;
  table: ProcessTable;
  logger: Logger;
  now: () => number;
  toChild: (ws: WorkspaceEntry, key: string, event: ChildEvent) => void;
  /** No process of the workspace or pipeline is left: tell its actor (or finish a forced reap). */
  onScopeEmpty: (scope: StopScope, result: StopResult) => void;
}

/** What the reaper hears: the kernel's news about runs, its own timers, and requests to look. */
type ReaperMessage =
  | { type: 'exited'; run: RunEntry; code: number | null; signal: NodeJS.Signals | null; reason?: 'oom' | 'node-lost' }
  | { type: 'adoptedGone'; run: RunEntry }
  | { type: 'outputEnded'; run: RunEntry }
  | { type: 'drainCapped'; run: RunEntry }
  | { type: 'check'; scope: StopScope };

/** The event that tells a run's actor how it ended: built here only. */
export function exitEvent(run: RunEntry, exit: ExitInfo, at: number): ChildEvent {
  const { code, signal, status } = exit;
  return run.pipelineId
    ? { type: 'NODE_EXITED', at, label: run.label, runId: run.id, code, signal, status }
    : { type: 'EXITED', at, runId: run.id, code, signal, status };
}

/**
 * The reaper actor: turns child exits into events for the actor that owns the run (EXITED
 * for a command, NODE_EXITED for a pipeline), and, while a workspace or a pipeline stops,
 * watches until nothing of its process groups — nor any descendant that escaped them — is left.
 */
export class Reaper {
  private readonly mailbox = new Mailbox<ReaperMessage>((message) => this.handle(message));
  private readonly recheckTimers = new Map<string, NodeJS.Timeout>();
  private readonly recheckDelays = new Map<string, number>();
  private readonly drainTimers = new Map<RunEntry, NodeJS.Timeout>();

  constructor(private readonly deps: ReaperDeps) {}

  /** Listens to a process the host started: its exit and the end of its output come in as messages. */
  watch(run: RunEntry, spawned: SpawnedProcess): void {
    spawned.onOutputEnd(() => this.mailbox.send({ type: 'outputEnded', run }));
    spawned.onExit((code, signal, reason) => this.mailbox.send({ type: 'exited', run, code, signal, ...(reason ? { reason } : {}) }));
  }

  /**
   * A process a crashed runtime had started, still running: not our child, so no exit event;
   * /proc is polled until it is gone. Its exit status cannot be known: -1, reason 'exit-unknown'.
   */
  adopt(run: RunEntry, startTime: number): void {
    run.outputEnded = true;
    run.outputDone = true;
    const timer = setInterval(() => {
      try {
        if (isSameProcess({ pid: run.pid, startTime })) return;
      } catch (error) {
        // /proc unreadable now (EMFILE…): it is not known to be gone; look again next round.
        this.deps.logger.debug({ pid: run.pid, err: serializeError(error) }, 'could not look for an adopted process');
        return;
      }
      clearInterval(timer);
      this.mailbox.send({ type: 'adoptedGone', run });
    }, ADOPTED_POLL_MS);
    timer.unref();
  }

  /** While a scope stops: finish when nothing of it is left, else look again soon. */
  check(scope: StopScope): void {
    this.mailbox.send({ type: 'check', scope });
  }

  close(): void {
    for (const id of [...this.recheckTimers.keys()]) this.cancelRecheck(id);
  }

  private handle(message: ReaperMessage): void {
    switch (message.type) {
      case 'exited': {
        const exit = toExitInfo(message.code, message.signal);
        this.ended(message.run, exit, message.reason ?? (exit.status === -1 ? 'exit-unknown' : null), 'command exited');
        return;
      }
      case 'adoptedGone':
        this.ended(message.run, { code: null, signal: null, status: -1 }, 'exit-unknown', 'adopted process exited');
        return;
      case 'outputEnded':
        message.run.outputEnded = true;
        this.outputDone(message.run);
        return;
      case 'drainCapped':
        this.outputDone(message.run);
        return;
      case 'check':
        this.checkScope(message.scope);
        return;
    }
  }

  /** A run ended: the table says so, its actor is told, a stop waiting for it looks again. */
  private ended(run: RunEntry, exit: ExitInfo, reason: RunEntry['reason'], what: string): void {
    run.alive = false;
    run.exit = exit;
    if (reason) run.reason = reason;
    const ws = this.deps.registry.get(run.wsId);
    // What the snapshot holds of the workspace moved now (the run is no longer among its
    // processes, its exit is in its history), whenever its actor hears it: a relaunch on a
    // standing order tells the exit once the next run started (toChild's count comes then).
    if (ws) ws.changes++;
    if (ws && exit.signal === 'SIGKILL') this.attributeOomKill(ws, run);
    if (ws) forgetEmptyGroup(ws, run, this.deps.logger);
    this.deps.logger.info({ ws: run.wsId, command: run.key, run: run.id, pid: run.pid, label: run.label, ...exit, reason: run.reason }, what);
    if (run.outputEnded) this.outputDone(run);
    else this.drainTimers.set(run, setTimeout(() => this.mailbox.send({ type: 'drainCapped', run }), OUTPUT_DRAIN_CAP_MS));
    if (!ws) return;
    this.deps.toChild(ws, run.key, exitEvent(run, exit, this.deps.now()));
    const pipeline = run.pipelineId ? ws.pipelines.get(run.pipelineId) : undefined;
    if (pipeline?.hostStop) this.checkScope(pipeline);
    if (ws.hostStop) this.checkScope(ws);
  }

  private outputDone(run: RunEntry): void {
    clearTimeout(this.drainTimers.get(run));
    this.drainTimers.delete(run);
    if (!run.exit) return;
    run.outputDone = true;
    settleExited(run);
  }

  /** A SIGKILL that the kernel's OOM killer counted in the workspace's cgroup is the run's cause of death. */
  private attributeOomKill(ws: WorkspaceEntry, run: RunEntry): void {
    const kills = ws.cgroup?.oomKills() ?? 0;
    if (kills <= ws.oomKillsSeen) return;
    ws.oomKillsSeen = kills;
    run.reason = 'oom';
    this.deps.logger.warn(
      { ws: ws.id, command: run.key, run: run.id, pid: run.pid, label: run.label, oomKills: kills },
      'command killed by the kernel OOM killer (cgroup memory limit)',
    );
  }

  /** While a scope stops: finish when nothing of it is left, else look again soon. */
  private checkScope(scope: StopScope): void {
    const stop = scope.hostStop;
    if (!stop || !this.isLive(scope)) return;
    // Exits are reported by the kernel; only stragglers beyond the leaders need /proc.
    if (scope.pendingSpawns > 0 || this.deps.table.aliveIn(scope).length > 0) return;
    let members: ProcStat[];
    let escaped: ProcStat[];
    try {
      // Nobody of the scope is alive (above): a group whose number names a process now is not ours.
      forgetReusedGroups(scope.groups, []);
      members = scope.groups.size === 0 ? [] : groupMembers(scope.groups, listProcesses());
      escaped = stop.descendants.filter(isSameProcess);
    } catch (error) {
      // /proc unreadable now (EMFILE, ENOMEM): nothing is known to be gone, so the stop goes on
      // and looks again; it never reports an empty scope it could not see.
      this.deps.logger.warn({ [scope.kind === 'workspace' ? 'ws' : 'pipeline']: scope.id, err: serializeError(error) }, 'could not read /proc while stopping; looking again');
      this.recheckLater(scope);
      return;
    }
    const memberGroups = new Set(members.map((p) => p.pgrp));
    for (const pgid of [...scope.groups]) if (!memberGroups.has(pgid)) scope.groups.delete(pgid);
    const cgroup = scope.kind === 'workspace' ? (scope as WorkspaceEntry).cgroup : null;
    const inCgroup = cgroup?.pids() ?? [];
    if (members.length > 0 || escaped.length > 0 || inCgroup.length > 0) {
      if (members.length === 0) {
        // The groups are gone; what is left escaped them: it dies without more grace.
        for (const p of escaped) signalIfSame(p, 'SIGKILL', this.deps.logger);
        if (inCgroup.length > 0) void cgroup!.killAll().then(() => this.check(scope));
      }
      this.recheckLater(scope);
      return;
    }
    this.cancelRecheck(scope.id);
    const escapedPids = stop.descendants.map((p) => p.pid);
    if (escapedPids.length > 0) {
      this.deps.logger.warn(
        { [scope.kind === 'workspace' ? 'ws' : 'pipeline']: scope.id, escaped: escapedPids },
        'descendants had left their process groups; they were killed one by one',
      );
    }
    this.deps.onScopeEmpty(scope, { reaped: stop.aliveAtStop, escaped: escapedPids });
  }

  private isLive(scope: StopScope): boolean {
    const ws = this.deps.registry.get(scope.wsId);
    if (!ws) return false;
    return scope.kind === 'workspace' ? ws === scope : ws.pipelines.get(scope.id) === scope;
  }

  private recheckLater(scope: StopScope): void {
    if (this.recheckTimers.has(scope.id)) return;
    const delay = Math.min(MAX_RECHECK_MS, (this.recheckDelays.get(scope.id) ?? FIRST_RECHECK_MS / 2) * 2);
    this.recheckDelays.set(scope.id, delay);
    const timer = setTimeout(() => {
      this.recheckTimers.delete(scope.id);
      this.check(scope);
    }, delay);
    this.recheckTimers.set(scope.id, timer);
  }

  private cancelRecheck(id: string): void {
    clearTimeout(this.recheckTimers.get(id));
    this.recheckTimers.delete(id);
    this.recheckDelays.delete(id);
  }
}

/**
 * The run's process group, once its leader ended with nobody left in it: its number is free
 * from then on, and the next process given it (a stranger, or another workspace's run, which
 * leads a group of its own) would be signalled by a stop that still listed it, and counted in
 * the stats. A group with members left (a daemon the run started) stays listed until a stop
 * finds it empty.
 */
function forgetEmptyGroup(ws: WorkspaceEntry, run: RunEntry, logger: Logger): void {
  if (!ws.groups.has(run.pid) || signalGroup(run.pid, 0, logger)) return;
  ws.groups.delete(run.pid);
  if (run.pipelineId) ws.pipelines.get(run.pipelineId)?.groups.delete(run.pid);
}
