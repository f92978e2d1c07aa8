import type { Logger } from 'pino';
import { ShumaError, serializeError } from '../protocol/errors.js';
import type { CommandEvent, HostRequest, LogRequest, Signal, SpawnRequest } from '../protocol/messages.js';
import type { Reaper } from '../actors/reaper.js';
import { descendantsOf, listProcesses } from './proc.js';
import type { ProcessTable } from './process-table.js';
import type { CommandEntry, HostStop, Registry, WorkspaceEntry } from './registry.js';
import type { Spawner } from './spawner.js';

export interface HostActorDeps {
  registry: Registry;
  table: ProcessTable;
  spawner: Spawner;
  reaper: Reaper;
  logger: Logger;
  now: () => number;
  newId: () => string;
  logBufferBytes: number;
  toCommand: (ws: WorkspaceEntry, key: string, event: CommandEvent) => void;
}

/**
 * The host actor: the only code that starts or signals processes. It serves what the
 * machine actors ask (spawn, signal, log) and answers with events.
 */
export class HostActor {
  constructor(private readonly deps: HostActorDeps) {}

  receive(request: HostRequest): void {
    switch (request.type) {
      case 'spawn':
        void this.spawn(request);
        return;
      case 'signal': {
        const ws = this.deps.registry.get(request.wsId);
        if (ws) this.signalWorkspace(ws, request.signal);
        return;
      }
      case 'log':
        this.log(request);
        return;
    }
  }

  private async spawn(request: SpawnRequest): Promise<void> {
    const { registry, table, spawner, logger, now } = this.deps;
    const ws = registry.get(request.wsId);
    const command = ws?.commands.get(request.key);
    if (!ws || !command) return;
    const refuse = (error: ShumaError) => {
      command.firstRun.reject(error);
      this.deps.toCommand(ws, command.key, { type: 'SPAWN_FAILED', at: now(), error: serializeError(error) });
    };
    if (ws.hostStop) {
      refuse(new ShumaError('WORKSPACE_STOPPED', `workspace ${ws.id} (${ws.label}) is stopping: nothing new starts in it`));
      return;
    }
    ws.pendingSpawns++;
    let spawned;
    try {
      spawned = await spawner.spawn({
        file: command.file,
        argv0: command.spec.exec,
        args: command.spec.argv ?? [],
        env: command.env,
        cwd: command.cwd,
      });
    } catch (error) {
      ws.pendingSpawns--;
      refuse(error instanceof ShumaError ? error : new ShumaError('SPAWN_FAILED', String(error)));
      logger.warn({ ws: ws.id, command: command.key, err: serializeError(error) }, 'command spawn failed');
      this.deps.reaper.check(ws);
      return;
    }
    ws.pendingSpawns--;
    const run = table.add(
      {
        id: this.deps.newId(),
        key: command.key,
        wsId: ws.id,
        label: command.label,
        pid: spawned.pid,
        restarts: request.restarts,
        startedAt: now(),
        pipelineId: undefined,
      },
      this.deps.logBufferBytes,
    );
    spawned.stdout.on('data', (chunk: Buffer) => run.stdout.write(chunk));
    spawned.stderr.on('data', (chunk: Buffer) => run.stderr.write(chunk));
    this.deps.reaper.watch(run, spawned);
    logger.info(
      { ws: ws.id, command: command.key, run: run.id, pid: run.pid, label: run.label, restarts: run.restarts },
      'command spawned',
    );
    this.deps.toCommand(ws, command.key, { type: 'SPAWNED', at: run.startedAt, runId: run.id, pid: run.pid });
    command.firstRun.resolve(run);
    // A stop that began while the spawn was under way did not reach this process yet.
    const stopDuringSpawn = ws.hostStop as HostStop | null;
    if (stopDuringSpawn) this.signalGroup(run.pid, stopDuringSpawn.lastSignal);
  }

  /** Signals every process group of the workspace, and any descendant that left them. */
  signalWorkspace(ws: WorkspaceEntry, signal: Signal): void {
    const { table } = this.deps;
    const groups = table.groupsOf(ws.id);
    if (!ws.hostStop) {
      const processes = listProcesses();
      const roots = new Set(table.aliveIn(ws.id).map((run) => run.pid));
      for (const pgid of groups) roots.add(pgid);
      ws.hostStop = {
        lastSignal: signal,
        aliveAtStop: table.aliveIn(ws.id).length,
        descendants: descendantsOf(roots, processes).filter((p) => !groups.has(p.pgrp)),
      };
    }
    ws.hostStop.lastSignal = signal;
    for (const pgid of [...groups]) {
      if (!this.signalGroup(pgid, signal)) table.forgetGroup(ws.id, pgid);
    }
    for (const escaped of ws.hostStop.descendants) this.deps.reaper.signalIfSame(escaped, signal);
    this.deps.reaper.check(ws);
  }

  /** False when no process is left in the group. */
  private signalGroup(pgid: number, signal: Signal): boolean {
    try {
      process.kill(-pgid, signal);
      return true;
    } catch (error) {
      if ((error as { code?: string }).code === 'ESRCH') return false;
      this.deps.logger.error({ pgid, signal, err: serializeError(error) }, 'could not signal a process group');
      return true;
    }
  }

  private log(request: LogRequest): void {
    this.deps.logger[request.level](request.fields, request.msg);
  }
}

export type { CommandEntry };
