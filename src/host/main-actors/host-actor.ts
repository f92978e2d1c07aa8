import type { Logger } from 'pino';
import { ShumaError, serializeError } from '../../protocol/errors.js';
import type { ChildEvent, Signal } from '../../protocol/messages.js';
import type { TapAttempt, TapPlane } from '../flows/flow-hub.js';
import { descendantsOf, listProcesses, type ProcStat } from '../processes/proc.js';
import type { ProcessTable, RunEntry } from '../processes/process-table.js';
import type { LogFiles } from '../processes/log-files.js';
import { signalGroup, signalIfSame, signalPid } from '../processes/signals.js';
import type { CommandEntry, HostStop, LaunchPlan, PipelineEntry, Registry, StopScope, WorkspaceEntry } from '../registry/registry.js';
import { closePipes, openPipes, type KernelPipe } from '../spawn/kernel-pipes.js';
import { launchOrder } from '../spawn/launcher.js';
import type { SpawnedProcess, Spawner, SpawnOrder } from '../spawn/spawner.js';
import type { ProbeRunner } from '../probes/probe-runner.js';
import { Mailbox } from './mailbox.js';
import { stopInWaves } from './ordered-stop.js';
import type { Reaper } from './reaper.js';

export interface HostActorDeps {
  registry: Registry;
  table: ProcessTable;
  spawner: Spawner;
  reaper: Reaper;
  logger: Logger;
  now: () => number;
  newId: () => string;
  logBufferBytes: number;
  /** The files every captured stream is also written to (with a stateDir), or null. */
  logFiles: () => LogFiles | null;
  toChild: (ws: WorkspaceEntry, key: string, event: ChildEvent) => void;
  /** util-linux's prlimit, null when missing (the workspace's warnings say so). */
  prlimit: () => string | null;
  /** util-linux's setpriv, null when missing (the runtime's warnings say so). */
  setpriv: () => string | null;
  /** Whether children must die with the runtime: true unless a stateDir with orphans 'adopt' keeps them. */
  dieWithRuntime: () => boolean;
  /** A tapped pipeline's nodes are wired to the runtime through kernel pipes, and pumped by it. */
  taps: TapPlane;
  /** Readiness probes armed at a spawn: a line on stdout, NOTIFY_SOCKET. */
  probes: ProbeRunner;
  /** How a command becomes a spawn order on another placement (a Slurm step); default: this machine's. */
  orderFor?: (ws: WorkspaceEntry, plan: LaunchPlan) => SpawnOrder;
}

/** What a pipeline's spawn left: the nodes that started (all of them, unless it failed). */
interface PipelineSpawnOutcome {
  spawned: SpawnedProcess[];
  tap: TapAttempt | null;
  failure: ShumaError | null;
}

/** What the host actor hears: requests, and the completions of the spawns it set off. */
type HostMessage =
  | { type: 'spawn'; ws: WorkspaceEntry; command: CommandEntry; restarts: number }
  | { type: 'spawnPipeline'; ws: WorkspaceEntry; pipeline: PipelineEntry; attempt: number; only?: ReadonlySet<string> }
  | { type: 'signal'; scope: StopScope; signal: Signal; only?: ReadonlySet<number> }
  | { type: 'commandSpawned'; ws: WorkspaceEntry; command: CommandEntry; restarts: number; result: SpawnedProcess | ShumaError; token: string }
  | { type: 'pipelineSpawned'; ws: WorkspaceEntry; pipeline: PipelineEntry; attempt: number; outcome: PipelineSpawnOutcome; only?: ReadonlySet<string> };

/**
 * The host actor: the only code that starts or signals processes on this machine. It serves
 * what the machine actors ask (spawn, signal) and answers with events; a spawn under way is a
 * promise whose outcome comes back to it as a message.
 */
export class HostActor {
  private readonly mailbox = new Mailbox<HostMessage>((message) => this.handle(message));

  constructor(private readonly deps: HostActorDeps) {}

  spawnCommand(ws: WorkspaceEntry, command: CommandEntry, restarts: number): void {
    this.mailbox.send({ type: 'spawn', ws, command, restarts });
  }

  /** `nodes`: only these, spliced in beside the nodes that run on (rest_for_one). */
  spawnPipeline(ws: WorkspaceEntry, pipeline: PipelineEntry, attempt: number, nodes?: readonly string[]): void {
    this.mailbox.send({ type: 'spawnPipeline', ws, pipeline, attempt, ...(nodes ? { only: new Set(nodes) } : {}) });
  }

  /** Signals every process group of a workspace or pipeline, and any descendant that left them. */
  signalScope(scope: StopScope, signal: Signal): void {
    this.mailbox.send({ type: 'signal', scope, signal });
  }

  /** Signals one run's process group (a command stopped alone): its descendants go with it. */
  signalRun(ws: WorkspaceEntry, runId: string, signal: Signal): void {
    const run = this.deps.table.get(runId);
    if (run && run.wsId === ws.id && ws.groups.has(run.pid)) signalGroup(run.pid, signal, this.deps.logger);
  }

  /** A workspace stop in dependency order: SIGTERM wave by wave, each once the one before ended. */
  signalInWaves(ws: WorkspaceEntry, waves: string[][]): void {
    void stopInWaves(ws, waves, this.deps.table, (only) => this.mailbox.send({ type: 'signal', scope: ws, signal: 'SIGTERM', ...(only ? { only } : {}) }));
  }

  private handle(message: HostMessage): void {
    switch (message.type) {
      case 'spawn':
        this.startCommand(message.ws, message.command, message.restarts);
        return;
      case 'commandSpawned':
        this.commandSpawned(message.ws, message.command, message.restarts, message.result, message.token);
        return;
      case 'spawnPipeline':
        this.startPipeline(message.ws, message.pipeline, message.attempt, message.only);
        return;
      case 'pipelineSpawned':
        this.pipelineSpawned(message.ws, message.pipeline, message.attempt, message.outcome, message.only);
        return;
      case 'signal':
        this.signal(message.scope, message.signal, message.only);
        return;
    }
  }

  private startCommand(ws: WorkspaceEntry, command: CommandEntry, restarts: number): void {
    if (ws.hostStop) {
      this.refuse(ws, command, stoppingError(ws));
      return;
    }
    // A run told to notify its readiness gets its socket before it exists (systemd's NOTIFY_SOCKET).
    const token = this.deps.newId();
    let order = this.orderFor(ws, command);
    try {
      const notifySocket = this.deps.probes.prepare(command, token);
      if (notifySocket) order = { ...order, env: { ...order.env, NOTIFY_SOCKET: notifySocket } };
    } catch (error) {
      this.refuse(ws, command, error instanceof ShumaError ? error : new ShumaError('SPAWN_FAILED', String(error)));
      return;
    }
    // A stop is not over while the spawn may still produce a process.
    ws.pendingSpawns++;
    void spawnOrError(this.deps.spawner, order).then((result) =>
      this.mailbox.send({ type: 'commandSpawned', ws, command, restarts, result, token }),
    );
  }

  private commandSpawned(ws: WorkspaceEntry, command: CommandEntry, restarts: number, result: SpawnedProcess | ShumaError, token: string): void {
    ws.pendingSpawns--;
    if (result instanceof ShumaError) {
      this.deps.probes.forget(token);
      this.refuse(ws, command, result);
      this.deps.logger.warn({ ws: ws.id, command: command.key, err: serializeError(result) }, 'command spawn failed');
    } else {
      const run = this.register(ws, result, { key: command.key, label: command.label, restarts, timestamps: command.spec.timestamps });
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
    void this.spawnNodes(ws, pipeline, only).then((outcome) => this.mailbox.send({ type: 'pipelineSpawned', ws, pipeline, attempt, outcome, ...(only ? { only } : {}) }));
  }

  private async spawnNodes(ws: WorkspaceEntry, pipeline: PipelineEntry, only?: ReadonlySet<string>): Promise<PipelineSpawnOutcome> {
    const edges = pipeline.spec.tap ? [] : pipeline.spec.edges;
    let pipes: KernelPipe[] = [];
    let tap: TapAttempt | null = null;
    const spawned: SpawnedProcess[] = [];
    let failure: ShumaError | null = null;
    try {
      // Tapped: each node's edge ends are kernel pipes to the runtime, which pumps them.
      if (pipeline.spec.tap) tap = await this.deps.taps.prepare(ws, pipeline, only);
      pipes = await openPipes(edges.length);
      for (const node of nodesOf(pipeline, only)) {
        const stdio: NonNullable<SpawnOrder['stdio']> = tap ? tap.stdioOf(node.label) : {};
        edges.forEach((edge, i) => {
          if (edge.to === node.label) stdio.stdin = pipes[i]!.readFd;
          if (edge.from === node.label) stdio[edge.stream ?? 'stdout'] = pipes[i]!.writeFd;
        });
        const result = await spawnOrError(this.deps.spawner, { ...this.orderFor(ws, node), stdio });
        if (result instanceof ShumaError) {
          failure = result;
          break;
        }
        spawned.push(result);
      }
    } catch (error) {
      failure = error instanceof ShumaError ? error : new ShumaError('SPAWN_FAILED', String(error));
    } finally {
      closePipes(pipes);
      tap?.closeChildEnds();
    }
    return { spawned, tap, failure };
  }

  private pipelineSpawned(ws: WorkspaceEntry, pipeline: PipelineEntry, attempt: number, { spawned, tap, failure }: PipelineSpawnOutcome, only?: ReadonlySet<string>): void {
    const scopes = [ws, pipeline];
    for (const scope of scopes) scope.pendingSpawns--;
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
      this.register(ws, child, { key: pipeline.id, label: nodes[i]!.label, restarts: attempt, pipeline, timestamps: nodes[i]!.spec.timestamps }),
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

  private register(
    ws: WorkspaceEntry,
    spawned: SpawnedProcess,
    run: { key: string; label: string; restarts: number; pipeline?: PipelineEntry; timestamps: boolean | undefined },
  ): RunEntry {
    const entry = this.deps.table.add(
      {
        id: this.deps.newId(),
        key: run.key,
        wsId: ws.id,
        label: run.label,
        pid: spawned.pid,
        restarts: run.restarts,
        startedAt: this.deps.now(),
        pipelineId: run.pipeline?.id,
        ...(spawned.node !== undefined ? { node: spawned.node } : {}),
      },
      this.deps.logBufferBytes,
    );
    // Spawned with setsid: the pid is also the process group id.
    ws.groups.add(entry.pid);
    run.pipeline?.groups.add(entry.pid);
    // Null when the stream feeds a pipe (an edge, tapped or not); captured otherwise.
    // The ring is the fast path; a file only queues the chunk for a batched write after this turn.
    const files = this.deps.logFiles()?.open({ wsId: ws.id, key: run.key, label: run.label }, run.timestamps) ?? null;
    if (spawned.captureInto) {
      // The native spawner reads straight into the ring; the files copy what 'data' shows them.
      spawned.captureInto('stdout', entry.stdout);
      spawned.captureInto('stderr', entry.stderr);
      if (files) {
        spawned.stdout?.on('data', (chunk: Buffer) => files.stdout.write(chunk));
        spawned.stderr?.on('data', (chunk: Buffer) => files.stderr.write(chunk));
      }
    } else if (files) {
      spawned.stdout?.on('data', (chunk: Buffer) => (entry.stdout.write(chunk), files.stdout.write(chunk)));
      spawned.stderr?.on('data', (chunk: Buffer) => (entry.stderr.write(chunk), files.stderr.write(chunk)));
    } else {
      spawned.stdout?.on('data', (chunk: Buffer) => entry.stdout.write(chunk));
      spawned.stderr?.on('data', (chunk: Buffer) => entry.stderr.write(chunk));
    }
    // A read that fails (ECONNRESET on child_process's socketpairs, EIO) ends that capture, said
    // in the log; unheard, the 'error' would end the runtime. The stream closes after it.
    for (const [name, stream] of [['stdout', spawned.stdout], ['stderr', spawned.stderr]] as const) {
      stream?.on('error', (error: NodeJS.ErrnoException) =>
        this.deps.logger.warn({ ws: ws.id, run: entry.id, pid: entry.pid, stream: name, err: serializeError(error) }, 'reading a command\'s output failed'),
      );
    }
    this.deps.reaper.watch(entry, spawned);
    this.deps.logger.info(
      {
        ws: ws.id,
        command: entry.key,
        run: entry.id,
        pid: entry.pid,
        label: entry.label,
        restarts: entry.restarts,
        ...(entry.pipelineId ? { pipeline: entry.pipelineId } : {}),
      },
      'command spawned',
    );
    return entry;
  }

  /** A stop that began while the spawn was under way did not reach this process yet. */
  private catchUpWithStop(scopes: StopScope[], run: RunEntry): void {
    const stop = scopes.map((scope) => scope.hostStop as HostStop | null).find((s) => s !== null);
    if (stop) signalGroup(run.pid, stop.lastSignal, this.deps.logger);
  }

  private signal(scope: StopScope, signal: Signal, only?: ReadonlySet<number>): void {
    const { table } = this.deps;
    if (!scope.hostStop) {
      const alive = table.aliveIn(scope);
      let descendants: ProcStat[] = [];
      // A /proc scan costs milliseconds: only when there is someone to look for.
      if (alive.length > 0 || scope.groups.size > 0) {
        const processes = this.processesForStop(scope);
        // Search under our unreaped runs and the live members of our groups — never under a
        // group id alone: its leader may be gone and its number reused by a stranger, whose
        // children are not ours. (A number cannot be reused while a group of that id lives.)
        const roots = new Set(alive.map((run) => run.pid));
        for (const p of processes) if (scope.groups.has(p.pgrp)) roots.add(p.pid);
        descendants = descendantsOf(roots, processes).filter((p) => !scope.groups.has(p.pgrp));
      }
      scope.hostStop = { lastSignal: signal, aliveAtStop: alive.length, descendants };
    }
    scope.hostStop.lastSignal = signal;
    for (const pgid of [...scope.groups]) {
      if (only && !only.has(pgid)) continue;
      if (!signalGroup(pgid, signal, this.deps.logger)) scope.groups.delete(pgid);
    }
    // A stop in waves reaches the escaped and the cgroup with its last wave.
    if (only) {
      this.deps.reaper.check(scope);
      return;
    }
    for (const escaped of scope.hostStop.descendants) signalIfSame(escaped, signal, this.deps.logger);
    // A workspace's cgroup holds even what left every group and parent link (a double-forked daemon).
    if (scope.kind === 'workspace') {
      const cgroup = (scope as WorkspaceEntry).cgroup;
      for (const pid of cgroup?.pids() ?? []) signalPid(pid, signal);
    }
    this.deps.reaper.check(scope);
  }

  /**
   * Every process, to find a stopping scope's escaped descendants. Unreadable now (EMFILE…):
   * the stop goes on with its groups and cgroup, which need no scan; it is said, not thrown.
   */
  private processesForStop(scope: StopScope): ProcStat[] {
    try {
      return listProcesses();
    } catch (error) {
      this.deps.logger.warn({ scope: scope.id, err: serializeError(error) }, 'could not read /proc to find escaped descendants; stopping the process groups only');
      return [];
    }
  }

  /** The spawn order of a command: its limits and its cgroup applied before the program runs. */
  private orderFor(ws: WorkspaceEntry, plan: LaunchPlan): SpawnOrder {
    if (this.deps.orderFor) return this.deps.orderFor(ws, plan);
    const order = { file: plan.file, argv0: plan.spec.exec, args: plan.spec.argv ?? [], env: plan.env, cwd: plan.cwd };
    // With a cgroup, memory is the kernel's to bound (an OOM kill of the workspace's processes),
    // not RLIMIT_AS's (an address-space cap that breaks programs reserving large mappings).
    const limits = ws.cgroup && ws.spec.limits ? { ...ws.spec.limits, memoryBytes: undefined } : ws.spec.limits;
    const wrapping = {
      prlimit: this.deps.prlimit(),
      setpriv: this.deps.setpriv(),
      dieWithRuntime: this.deps.dieWithRuntime(),
      limits,
      cgroupProcsFiles: ws.cgroup?.procsFiles ?? [],
    };
    return launchOrder(order, wrapping, this.deps.spawner.appliesLimits);
  }
}

/** A pipeline's nodes to start: all, or only those a rest_for_one splice restarts. */
function nodesOf(pipeline: PipelineEntry, only?: ReadonlySet<string>): readonly LaunchPlan[] {
  return only ? pipeline.nodes.filter((node) => only.has(node.label)) : pipeline.nodes;
}

/** The current runs after a splice: the new ones in place of those they replace, in node order. */
function spliceRuns(pipeline: PipelineEntry, runs: RunEntry[]): RunEntry[] {
  const byLabel = new Map([...pipeline.currentRuns, ...runs].map((run) => [run.label, run]));
  return pipeline.nodes.map((node) => byLabel.get(node.label)).filter((run): run is RunEntry => run !== undefined);
}

/** Spawns; a failure is a value (the actor tells it as SPAWN_FAILED), never a rejection. */
async function spawnOrError(spawner: Spawner, order: SpawnOrder): Promise<SpawnedProcess | ShumaError> {
  try {
    return await spawner.spawn(order);
  } catch (error) {
    return error instanceof ShumaError ? error : new ShumaError('SPAWN_FAILED', String(error));
  }
}

function stoppingError(ws: WorkspaceEntry): ShumaError {
  return new ShumaError('WORKSPACE_STOPPED', `workspace ${ws.id} (${ws.label}) is stopping: nothing new starts in it`);
}
