import type { Logger } from 'pino';
import { serializeError } from '../../protocol/errors.js';
import type { ChildEvent, Signal } from '../../protocol/messages.js';
import { toExitInfo } from '../processes/exit-info.js';
import { groupMembers, isSameProcess, listProcesses, type ProcStat } from '../processes/proc.js';
import type { ProcessTable, RunEntry } from '../processes/process-table.js';
import type { Registry, StopResult, StopScope, WorkspaceEntry } from '../registry/registry.js';
import type { SpawnedProcess } from '../spawn/spawner.js';

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

/**
 * The reaper actor: turns child exits into events for the actor that owns the run (EXITED
 * for a command, NODE_EXITED for a pipeline), and, while a workspace or a pipeline stops,
 * watches until nothing of its process groups — nor any descendant that escaped them — is left.
 */
export class Reaper {
  private readonly recheckTimers = new Map<string, NodeJS.Timeout>();
  private readonly recheckDelays = new Map<string, number>();

  constructor(private readonly deps: ReaperDeps) {}

  watch(run: RunEntry, spawned: SpawnedProcess): void {
    let drainTimer: NodeJS.Timeout | undefined;
    spawned.onOutputEnd(() => {
      run.outputEnded = true;
      if (drainTimer) clearTimeout(drainTimer);
      if (run.exit) run.exited.resolve(run.exit);
    });
    spawned.onExit((code, signal, reason) => {
      const exit = toExitInfo(code, signal);
      run.alive = false;
      run.exit = exit;
      if (exit.status === -1) run.reason = 'exit-unknown';
      if (reason) run.reason = reason;
      const ws = this.deps.registry.get(run.wsId);
      if (ws && signal === 'SIGKILL') this.attributeOomKill(ws, run);
      this.deps.logger.info(
        { ws: run.wsId, command: run.key, run: run.id, pid: run.pid, label: run.label, ...exit, reason: run.reason },
        'command exited',
      );
      if (run.outputEnded) run.exited.resolve(exit);
      else drainTimer = setTimeout(() => run.exited.resolve(exit), OUTPUT_DRAIN_CAP_MS);
      if (!ws) return;
      const at = this.deps.now();
      this.deps.toChild(
        ws,
        run.key,
        run.pipelineId
          ? { type: 'NODE_EXITED', at, label: run.label, runId: run.id, ...exit }
          : { type: 'EXITED', at, runId: run.id, ...exit },
      );
      const pipeline = run.pipelineId ? ws.pipelines.get(run.pipelineId) : undefined;
      if (pipeline?.hostStop) this.check(pipeline);
      if (ws.hostStop) this.check(ws);
    });
  }

  /**
   * A process a crashed runtime had started, still running: not our child, so no exit event;
   * /proc is polled until it is gone. Its exit status cannot be known: -1, reason 'exit-unknown'.
   */
  adopt(run: RunEntry, startTime: number): void {
    run.outputEnded = true;
    const timer = setInterval(() => {
      try {
        if (isSameProcess({ pid: run.pid, startTime })) return;
      } catch (error) {
        // /proc unreadable now (EMFILE…): it is not known to be gone; look again next round.
        this.deps.logger.debug({ pid: run.pid, err: serializeError(error) }, 'could not look for an adopted process');
        return;
      }
      clearInterval(timer);
      const exit = { code: null, signal: null, status: -1 };
      run.alive = false;
      run.exit = exit;
      run.reason = 'exit-unknown';
      run.exited.resolve(exit);
      this.deps.logger.info({ ws: run.wsId, command: run.key, run: run.id, pid: run.pid, label: run.label }, 'adopted process exited');
      const ws = this.deps.registry.get(run.wsId);
      if (!ws) return;
      const at = this.deps.now();
      this.deps.toChild(
        ws,
        run.key,
        run.pipelineId ? { type: 'NODE_EXITED', at, label: run.label, ...exit, runId: run.id } : { type: 'EXITED', at, runId: run.id, ...exit },
      );
      const pipeline = run.pipelineId ? ws.pipelines.get(run.pipelineId) : undefined;
      if (pipeline?.hostStop) this.check(pipeline);
      if (ws.hostStop) this.check(ws);
    }, ADOPTED_POLL_MS);
    timer.unref();
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
  check(scope: StopScope): void {
    const stop = scope.hostStop;
    if (!stop || !this.isLive(scope)) return;
    // Exits are reported by the kernel; only stragglers beyond the leaders need /proc.
    if (scope.pendingSpawns > 0 || this.deps.table.aliveIn(scope).length > 0) return;
    let members: ProcStat[];
    let escaped: ProcStat[];
    try {
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
        for (const p of escaped) this.signalIfSame(p, 'SIGKILL');
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

  /** Signals a process seen earlier, unless its pid now names another process. */
  signalIfSame(seen: ProcStat, signal: Signal): void {
    try {
      if (!isSameProcess(seen)) return;
      process.kill(seen.pid, signal);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ESRCH') {
        this.deps.logger.error({ pid: seen.pid, err: serializeError(error) }, 'could not signal an escaped descendant');
      }
    }
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

  close(): void {
    for (const id of [...this.recheckTimers.keys()]) this.cancelRecheck(id);
  }
}
