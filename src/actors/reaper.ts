import type { Logger } from 'pino';
import { serializeError } from '../protocol/errors.js';
import type { CommandEvent, Signal } from '../protocol/messages.js';
import { toExitInfo } from '../host/exit-info.js';
import { groupMembers, isSameProcess, listProcesses, type ProcStat } from '../host/proc.js';
import type { ProcessTable, RunEntry } from '../host/process-table.js';
import type { Registry, StopResult, WorkspaceEntry } from '../host/registry.js';
import type { SpawnedProcess } from '../host/spawner.js';

/** How long `exited` waits for the output pipes to close after the exit, when a background
 * descendant keeps them open: past it, the run is over and its log is what was read. */
const OUTPUT_DRAIN_CAP_MS = 100;
/** Re-check of a stopping workspace's groups: quick at first, then no more than 10 times a second. */
const FIRST_RECHECK_MS = 2;
const MAX_RECHECK_MS = 100;

export interface ReaperDeps {
  registry: Registry;
  table: ProcessTable;
  logger: Logger;
  now: () => number;
  toCommand: (ws: WorkspaceEntry, key: string, event: CommandEvent) => void;
  /** No process of the workspace is left: tell its actor (or finish a forced reap). */
  onGroupsEmpty: (ws: WorkspaceEntry, result: StopResult) => void;
}

/**
 * The reaper actor: turns child exits into EXITED events for the actor that owns the run,
 * and, while a workspace stops, watches until nothing of its process groups — nor any
 * descendant that escaped them — is left.
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
    spawned.onExit((code, signal) => {
      const exit = toExitInfo(code, signal);
      run.alive = false;
      run.exit = exit;
      const ws = this.deps.registry.get(run.wsId);
      this.deps.logger.info(
        { ws: run.wsId, command: run.key, run: run.id, pid: run.pid, label: run.label, ...exit },
        'command exited',
      );
      if (run.outputEnded) run.exited.resolve(exit);
      else drainTimer = setTimeout(() => run.exited.resolve(exit), OUTPUT_DRAIN_CAP_MS);
      if (!ws) return;
      this.deps.toCommand(ws, run.key, { type: 'EXITED', at: this.deps.now(), runId: run.id, ...exit });
      if (ws.hostStop) this.check(ws);
    });
  }

  /** While the workspace stops: finish when nothing of it is left, else look again soon. */
  check(ws: WorkspaceEntry): void {
    const stop = ws.hostStop;
    if (!stop || this.deps.registry.get(ws.id) !== ws) return;
    // Exits are reported by the kernel; only stragglers beyond the leaders need /proc.
    if (ws.pendingSpawns > 0 || this.deps.table.aliveIn(ws.id).length > 0) return;
    const processes = listProcesses();
    const groups = this.deps.table.groupsOf(ws.id);
    const members = groupMembers(groups, processes);
    const memberGroups = new Set(members.map((p) => p.pgrp));
    for (const pgid of [...groups]) if (!memberGroups.has(pgid)) this.deps.table.forgetGroup(ws.id, pgid);
    const escaped = stop.descendants.filter(isSameProcess);
    if (members.length > 0 || escaped.length > 0) {
      if (members.length === 0) for (const p of escaped) this.signalIfSame(p, 'SIGKILL');
      this.recheckLater(ws);
      return;
    }
    this.cancelRecheck(ws.id);
    const escapedPids = stop.descendants.map((p) => p.pid);
    if (escapedPids.length > 0) {
      this.deps.logger.warn(
        { ws: ws.id, escaped: escapedPids },
        'descendants had left the workspace process groups; they were killed one by one',
      );
    }
    this.deps.onGroupsEmpty(ws, { reaped: stop.aliveAtStop, escaped: escapedPids });
  }

  /** Signals a process seen earlier, unless its pid now names another process. */
  signalIfSame(seen: ProcStat, signal: Signal): void {
    if (!isSameProcess(seen)) return;
    try {
      process.kill(seen.pid, signal);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ESRCH') {
        this.deps.logger.error({ pid: seen.pid, err: serializeError(error) }, 'could not signal an escaped descendant');
      }
    }
  }

  private recheckLater(ws: WorkspaceEntry): void {
    if (this.recheckTimers.has(ws.id)) return;
    const delay = Math.min(MAX_RECHECK_MS, (this.recheckDelays.get(ws.id) ?? FIRST_RECHECK_MS / 2) * 2);
    this.recheckDelays.set(ws.id, delay);
    const timer = setTimeout(() => {
      this.recheckTimers.delete(ws.id);
      this.check(ws);
    }, delay);
    this.recheckTimers.set(ws.id, timer);
  }

  private cancelRecheck(wsId: string): void {
    clearTimeout(this.recheckTimers.get(wsId));
    this.recheckTimers.delete(wsId);
    this.recheckDelays.delete(wsId);
  }

  close(): void {
    for (const wsId of [...this.recheckTimers.keys()]) this.cancelRecheck(wsId);
  }
}
