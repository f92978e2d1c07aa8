import { ShumaError, serializeError } from '../../protocol/errors.js';
import type { ActorSnapshot } from '../../protocol/actor-records.js';
import type { RelaunchOrder, Signal } from '../../protocol/host-requests.js';
import type { ChildEvent } from '../../protocol/machine-events.js';
import type { RunEntry } from '../processes/process-table.js';
import { signalGroup } from '../processes/signals.js';
import type { CommandEntry, HostStop, PipelineEntry, StopScope, WorkspaceEntry } from '../registry/registry.js';
import type { SpawnedProcess } from '../spawn/spawner.js';
import type { HostActorDeps } from './host-actor-deps.js';
import { Mailbox } from './mailbox.js';
import { stopInWaves } from './ordered-stop.js';
import { nodesOf, spawnNodes, spliceRuns, type PipelineSpawnOutcome } from './pipeline-spawn.js';
import { registerRun } from './run-registration.js';
import { signalScope } from './scope-signal.js';
import { spawnOrError } from './spawn-or-error.js';
import { commandSpawnOrder, spawnOrderFor } from './spawn-order.js';
import { StandingOrders } from './standing-orders.js';

/** What the host actor hears: requests, and the completions of the spawns it set off. */
type HostMessage =
  | { type: 'spawn'; ws: WorkspaceEntry; command: CommandEntry; restarts: number; relaunch?: RelaunchOrder }
  | { type: 'spawnPipeline'; ws: WorkspaceEntry; pipeline: PipelineEntry; attempt: number; only?: ReadonlySet<string> }
  | { type: 'signal'; scope: StopScope; signal: Signal; only?: ReadonlySet<number> }
  | { type: 'commandSpawned'; ws: WorkspaceEntry; command: CommandEntry; restarts: number; result: SpawnedProcess | ShumaError; token: string; relaunch?: RelaunchOrder }
  | { type: 'aheadSpawned'; ws: WorkspaceEntry; command: CommandEntry; restarts: number; result: SpawnedProcess | ShumaError; done: (result: RunEntry | ShumaError) => void }
  | { type: 'pipelineSpawned'; ws: WorkspaceEntry; pipeline: PipelineEntry; attempt: number; outcome: PipelineSpawnOutcome; only?: ReadonlySet<string> };

/**
 * The host actor: the only code that starts or signals processes on this machine. It serves
 * what the machine actors ask (spawn, signal) and answers with events; a spawn under way is a
 * promise whose outcome comes back to it as a message.
 */
export class HostActor {
  private readonly mailbox = new Mailbox<HostMessage>((message) => this.handle(message));
  private readonly orders: StandingOrders;
  /**
   * The spawn under way of each command (by the restart count asked for) and of each pipeline
   * (by attempt). The same spawn asked again meanwhile is the request of an actor re-hosted
   * after its thread died (core/rehosting.ts): the snapshot it came back from was taken after
   * its first request, so it asks again. It is not spawned twice: the run under way is its
   * answer, told to the actor it has now once the spawn is done.
   */
  private readonly spawning = new WeakMap<CommandEntry | PipelineEntry, number>();

  constructor(private readonly deps: HostActorDeps) {
    this.orders = new StandingOrders(deps, {
      spawnAhead: (ws, command, restarts, done, after) => this.spawnAhead(ws, command, restarts, done, after),
      refuse: (ws, command, error) => this.refuse(ws, command, error),
      arm: (ws, command, run, always) => void this.deps.spawner.armRelaunch?.(run.pid, commandSpawnOrder(this.deps, ws, command), always),
      disarm: (run) => this.deps.spawner.disarmRelaunch?.(run.pid),
    });
  }

  /** `relaunch`: the actor's standing order for this run (standing-orders.ts). */
  spawnCommand(ws: WorkspaceEntry, command: CommandEntry, restarts: number, relaunch?: RelaunchOrder): void {
    this.mailbox.send({ type: 'spawn', ws, command, restarts, ...(relaunch ? { relaunch } : {}) });
  }

  /** A command just run that waits for nothing: its first run starts now, told once its actor asks. */
  runAhead(ws: WorkspaceEntry, command: CommandEntry): void {
    this.orders.runAhead(ws, command);
  }

  /** A command's exit, told to its actor (the reaper's way there): a run started ahead may go first. */
  tellExit(ws: WorkspaceEntry, key: string, event: ChildEvent): void {
    this.orders.exited(ws, key, event);
  }

  /** The command actor's mirror moved (core/worker-inbox.ts): a run started ahead it will not ask for is killed. */
  commandMoved(ws: WorkspaceEntry, command: CommandEntry, snapshot: ActorSnapshot): void {
    this.orders.moved(ws, command, snapshot);
  }

  /** `nodes`: only these, spliced in beside the nodes that run on (rest_for_one). */
  spawnPipeline(ws: WorkspaceEntry, pipeline: PipelineEntry, attempt: number, nodes?: readonly string[]): void {
    this.mailbox.send({ type: 'spawnPipeline', ws, pipeline, attempt, ...(nodes ? { only: new Set(nodes) } : {}) });
  }

  /** Signals every process group of a workspace or pipeline, and any descendant that left them. */
  signalScope(scope: StopScope, signal: Signal): void {
    this.mailbox.send({ type: 'signal', scope, signal });
  }

  /** The command's actor is told to stop: no run of it is relaunched ahead of what it decides. */
  commandStopping(ws: WorkspaceEntry, command: CommandEntry): void {
    this.orders.stop(ws, command);
  }

  /** Signals one run's process group (a command stopped alone): its descendants go with it. */
  signalRun(ws: WorkspaceEntry, runId: string, signal: Signal): void {
    // The actor ends the run itself: what follows its exit is the actor's to decide, after it.
    this.orders.revoke(runId);
    const run = this.deps.table.get(runId);
    if (run && run.wsId === ws.id && ws.groups.has(run.pid)) signalGroup(run.pid, signal, this.deps.logger);
  }

  /**
   * A placement that signals one run its own way (Slurm: scancel to the step) says so first, as
   * signalRun does: the actor ends the run itself and decides what follows, not a standing order.
   */
  revokeOrder(runId: string): void {
    this.orders.revoke(runId);
  }

  /** A workspace stop in dependency order: SIGTERM wave by wave, each once the one before ended. */
  signalInWaves(ws: WorkspaceEntry, waves: string[][]): void {
    void stopInWaves(ws, waves, this.deps.table, (only) => this.mailbox.send({ type: 'signal', scope: ws, signal: 'SIGTERM', ...(only ? { only } : {}) }));
  }

  private handle(message: HostMessage): void {
    switch (message.type) {
      case 'spawn':
        if (this.orders.asked(message.ws, message.command, message.restarts, message.relaunch)) return;
        if (this.spawning.get(message.command) === message.restarts) return;
        this.startCommand(message.ws, message.command, message.restarts, message.relaunch);
        return;
      case 'commandSpawned':
        this.commandSpawned(message.ws, message.command, message.restarts, message.result, message.token, message.relaunch);
        return;
      case 'aheadSpawned':
        this.aheadSpawned(message.ws, message.command, message.restarts, message.result, message.done);
        return;
      case 'spawnPipeline':
        if (this.spawning.get(message.pipeline) === message.attempt) return;
        this.startPipeline(message.ws, message.pipeline, message.attempt, message.only);
        return;
      case 'pipelineSpawned':
        this.pipelineSpawned(message.ws, message.pipeline, message.attempt, message.outcome, message.only);
        return;
      case 'signal':
        if (message.scope.kind === 'workspace' && !message.scope.hostStop) this.orders.workspaceStopping(message.scope as WorkspaceEntry);
        signalScope(this.deps, message.scope, message.signal, message.only);
        return;
    }
  }

  private startCommand(ws: WorkspaceEntry, command: CommandEntry, restarts: number, relaunch?: RelaunchOrder): void {
    if (ws.hostStop) {
      this.refuse(ws, command, stoppingError(ws));
      return;
    }
    // A run told to notify its readiness gets its socket before it exists (systemd's NOTIFY_SOCKET).
    const token = this.deps.newId();
    let order = commandSpawnOrder(this.deps, ws, command);
    try {
      const notifySocket = this.deps.probes.prepare(command, token);
      if (notifySocket) order = { ...order, env: { ...order.env, NOTIFY_SOCKET: notifySocket } };
    } catch (error) {
      this.refuse(ws, command, error instanceof ShumaError ? error : new ShumaError('SPAWN_FAILED', String(error)));
      return;
    }
    // A stop is not over while the spawn may still produce a process.
    ws.pendingSpawns++;
    this.spawning.set(command, restarts);
    void spawnOrError(this.deps.spawner, order).then((result) =>
      this.mailbox.send({ type: 'commandSpawned', ws, command, restarts, result, token, ...(relaunch ? { relaunch } : {}) }),
    );
  }

  /** A relaunch on a standing order: no readiness probe (an actor with one gives no order). */
  private spawnAhead(ws: WorkspaceEntry, command: CommandEntry, restarts: number, done: (result: RunEntry | ShumaError) => void, after?: RunEntry): void {
    ws.pendingSpawns++;
    // Started by the spawner at `after`'s exit already (armRelaunch): taken, not spawned again.
    const started = after && this.deps.spawner.relaunched?.(after.pid);
    if (started) {
      void started.then(
        (result) => this.mailbox.send({ type: 'aheadSpawned', ws, command, restarts, result, done }),
        (error: unknown) => this.mailbox.send({ type: 'aheadSpawned', ws, command, restarts, result: error instanceof ShumaError ? error : new ShumaError('SPAWN_FAILED', String(error)), done }),
      );
      return;
    }
    // A first run's spawn is submitted a microtask after it was decided: a stop may have come between.
    if (ws.hostStop) {
      this.mailbox.send({ type: 'aheadSpawned', ws, command, restarts, result: stoppingError(ws), done });
      return;
    }
    void spawnOrError(this.deps.spawner, commandSpawnOrder(this.deps, ws, command)).then((result) =>
      this.mailbox.send({ type: 'aheadSpawned', ws, command, restarts, result, done }),
    );
  }

  private aheadSpawned(ws: WorkspaceEntry, command: CommandEntry, restarts: number, result: SpawnedProcess | ShumaError, done: (result: RunEntry | ShumaError) => void): void {
    ws.pendingSpawns--;
    if (result instanceof ShumaError) {
      this.deps.logger.warn({ ws: ws.id, command: command.key, err: serializeError(result) }, 'command spawn failed');
      done(result);
    } else {
      const run = registerRun(this.deps, ws, result, { key: command.key, label: command.label, restarts, timestamps: command.spec.timestamps });
      done(run);
      this.catchUpWithStop([ws], run);
    }
    if (ws.hostStop) this.deps.reaper.check(ws);
  }

  private commandSpawned(ws: WorkspaceEntry, command: CommandEntry, restarts: number, result: SpawnedProcess | ShumaError, token: string, relaunch?: RelaunchOrder): void {
    ws.pendingSpawns--;
    if (this.spawning.get(command) === restarts) this.spawning.delete(command);
    if (result instanceof ShumaError) {
      this.deps.probes.forget(token);
      this.refuse(ws, command, result);
      this.deps.logger.warn({ ws: ws.id, command: command.key, err: serializeError(result) }, 'command spawn failed');
    } else {
      const run = registerRun(this.deps, ws, result, { key: command.key, label: command.label, restarts, timestamps: command.spec.timestamps });
      this.orders.give(ws, command, run, relaunch);
      this.deps.toChild(ws, command.key, { type: 'SPAWNED', at: run.startedAt, runId: run.id, pid: run.pid });
      // The host knows the fact: run() settles now; reads of the actor wait until it knows too (core/caught-up.ts).
      command.firstRun.resolve(run);
      this.deps.probes.attach(ws, command, run, result, token);
      this.catchUpWithStop([ws], run);
    }
    if (ws.hostStop) this.deps.reaper.check(ws);
  }

  private refuse(ws: WorkspaceEntry, command: CommandEntry, error: ShumaError): void {
    command.firstRun.reject(error);
    this.deps.toChild(ws, command.key, { type: 'SPAWN_FAILED', at: this.deps.now(), error: serializeError(error) });
  }

  /**
   * Starts every node of a pipeline, wired through kernel pipes (or through the runtime when
   * tapped), or none: if one fails, the others are killed before anything is reported.
   */
  private startPipeline(ws: WorkspaceEntry, pipeline: PipelineEntry, attempt: number, only?: ReadonlySet<string>): void {
    if (ws.hostStop || pipeline.hostStop) {
      this.pipelineFailed(ws, pipeline, stoppingError(ws));
      return;
    }
    for (const scope of [ws, pipeline]) scope.pendingSpawns++;
    this.spawning.set(pipeline, attempt);
    void spawnNodes(this.deps, (w, plan) => spawnOrderFor(this.deps, w, plan), ws, pipeline, only).then((outcome) => this.mailbox.send({ type: 'pipelineSpawned', ws, pipeline, attempt, outcome, ...(only ? { only } : {}) }));
  }

  private pipelineSpawned(ws: WorkspaceEntry, pipeline: PipelineEntry, attempt: number, { spawned, tap, failure }: PipelineSpawnOutcome, only?: ReadonlySet<string>): void {
    const scopes = [ws, pipeline];
    for (const scope of scopes) scope.pendingSpawns--;
    if (this.spawning.get(pipeline) === attempt) this.spawning.delete(pipeline);
    if (failure) {
      tap?.abort();
      // All or nothing: what did start is killed (Node reaps it), nothing is reported but the cause.
      for (const child of spawned) signalGroup(child.pid, 'SIGKILL', this.deps.logger);
      this.deps.logger.warn({ ws: ws.id, pipeline: pipeline.id, err: serializeError(failure) }, 'pipeline spawn failed');
      this.pipelineFailed(ws, pipeline, failure);
      for (const scope of scopes) if (scope.hostStop) this.deps.reaper.check(scope);
      return;
    }
    const nodes = nodesOf(pipeline, only);
    const runs = spawned.map((child, i) =>
      registerRun(this.deps, ws, child, { key: pipeline.id, label: nodes[i]!.label, restarts: attempt, pipeline, timestamps: nodes[i]!.spec.timestamps }),
    );
    pipeline.currentRuns = only ? spliceRuns(pipeline, runs) : runs;
    tap?.start();
    this.deps.logger.info(
      { ws: ws.id, pipeline: pipeline.id, label: pipeline.label, attempt, pids: runs.map((r) => r.pid) },
      'pipeline spawned',
    );
    this.deps.toChild(ws, pipeline.id, {
      type: 'PIPELINE_SPAWNED',
      at: this.deps.now(),
      attempt,
      runs: runs.map((run) => ({ label: run.label, runId: run.id, pid: run.pid })),
    });
    pipeline.started.resolve();
    for (const run of runs) this.catchUpWithStop(scopes, run);
  }

  private pipelineFailed(ws: WorkspaceEntry, pipeline: PipelineEntry, error: ShumaError): void {
    pipeline.started.reject(error);
    this.deps.toChild(ws, pipeline.id, { type: 'PIPELINE_SPAWN_FAILED', at: this.deps.now(), error: serializeError(error) });
  }

  /** A stop that began while the spawn was under way did not reach this process yet. */
  private catchUpWithStop(scopes: StopScope[], run: RunEntry): void {
    const stop = scopes.map((scope) => scope.hostStop as HostStop | null).find((s) => s !== null);
    if (stop) signalGroup(run.pid, stop.lastSignal, this.deps.logger);
  }
}

function stoppingError(ws: WorkspaceEntry): ShumaError {
  return new ShumaError('WORKSPACE_STOPPED', `workspace ${ws.id} (${ws.label}) is stopping: nothing new starts in it`);
}
