import type { ActorSnapshot } from '../../protocol/actor-records.js';
import type { RelaunchOrder, Signal } from '../../protocol/host-requests.js';
import type { ChildEvent } from '../../protocol/machine-events.js';
import type { PlacementInfo } from '../../protocol/placement-spec.js';
import type { WorkspaceSpec } from '../../protocol/specs.js';
import type { WorkspaceUsage } from '../main-actors/quota-actor.js';
import type { CgroupHandle, CommandEntry, PipelineEntry, StopResult, StopScope, WorkspaceEntry } from '../registry/registry.js';

/**
 * Where a workspace's processes run: the one seam between the runtime and an execution
 * engine. The machines never see it: they ask the host for spawns and signals, the core routes
 * each request to the placement of the request's workspace, and the placement answers with the
 * same events (SPAWNED, SPAWN_FAILED, EXITED, NODE_EXITED, PIPELINE_SPAWNED…) through
 * `PlacementEvents`, whichever engine ran the process.
 *
 * A placement is chosen per workspace when it is created (`WorkspaceEntry.placementKind`) and
 * serves it until it stopped. `local` (local-placement.ts) is this machine: the host actor
 * spawns and signals, the reaper turns exits into events and waits for empty groups, the
 * workspace's cgroup bounds it.
 *
 * A second implementation plugs in like this (the Slurm one, in src/host/placement/slurm/):
 * 1. implement `Placement` (prepare: get an allocation; spawnCommand/spawnPipeline: start steps
 *    in it and report through `events`; signal: signal the steps; usage: the steps' stats;
 *    teardown: cancel the allocation);
 * 2. register it in `createPlacements()` (placements.ts) under its kind;
 * 3. let `placementKindOf(spec)` map the workspace spec's `placement` field to that kind.
 * Runs it starts go into the process table like local ones (`events.register`), so logs(),
 * commands(), why() and persistence read them the same way.
 */
export interface Placement {
  /** 'local', or the engine's name: what ps and the inspector show. */
  readonly kind: string;
  /**
   * Everything the workspace needs before its actor exists (a cgroup, an allocation), and what
   * of its spec cannot be applied here. Throws a ShumaError leaving nothing behind.
   */
  prepare(spec: WorkspaceSpec, wsId: string, resume?: PlacementInfo, asked?: () => void): Promise<PreparedWorkspace>;
  /**
   * prepare() waits on something outside (an allocation): a new workspace's actor is hosted
   * meanwhile (core/create-while-placing.ts), and a teardown() that comes before prepare() has
   * answered (the workspace stopped: its TTL, a shutdown) ends what prepare() was getting and
   * makes it reject. Such a placement calls prepare()'s `asked` once its request is under way,
   * within the call's own microtasks (no event-loop turn between): only then is the actor sent
   * to its worker, so that the worker's wake-up does not delay the request on a busy machine.
   */
  readonly hostsWhilePreparing?: boolean;
  /**
   * The runtime opened a stateDir (`mark`, its orphans killed): what a runtime that died on it
   * left with the engine (a request still queued) is ended, except what the snapshot's
   * workspaces were placed on (`known`). Works in the background; close() waits for it.
   */
  openedState?(mark: string, known: readonly PlacementInfo[], warn: (message: string) => void): void;
  /**
   * Starts one run of a command; answers SPAWNED or SPAWN_FAILED to the command actor.
   * `relaunch`: the actor's standing order for the run, which a placement may act on ahead.
   */
  spawnCommand(ws: WorkspaceEntry, command: CommandEntry, restarts: number, relaunch?: RelaunchOrder): void;
  /** A command just run that waits for nothing: a placement may start its first run before its actor asks. */
  runAhead?(ws: WorkspaceEntry, command: CommandEntry): void;
  /** The command actor's mirror moved (a placement holding runs ahead of its actor looks). */
  commandMoved?(ws: WorkspaceEntry, command: CommandEntry, snapshot: ActorSnapshot): void;
  /** The command actor is being told to stop (a placement acting ahead of its actor stops acting). */
  commandStopping?(ws: WorkspaceEntry, command: CommandEntry): void;
  /** Starts every node of a pipeline, or none; answers PIPELINE_SPAWNED or PIPELINE_SPAWN_FAILED. */
  /** `nodes`: only these (rest_for_one splices them in beside the nodes that run on). */
  spawnPipeline(ws: WorkspaceEntry, pipeline: PipelineEntry, attempt: number, nodes?: readonly string[]): void;
  /** rest_for_one: a node that ended for good lets go of its stdin (placements that splice). */
  releasePipelineInput?(pipeline: PipelineEntry, label: string): void;
  /**
   * Signals everything of a workspace or a pipeline; from the first signal on, the scope is
   * stopping and `events.scopeEmpty` is called once nothing of it is left.
   */
  signal(scope: StopScope, signal: Signal): void;
  /** Signals one run (a command stopped alone, its workspace going on); absent: not supported there. */
  signalRun?(ws: WorkspaceEntry, runId: string, signal: Signal): void;
  /**
   * A workspace stop in dependency order: SIGTERM to waves of command keys, each once the one
   * before has ended. Optional: an engine without it signals everything at once.
   */
  signalInWaves?(ws: WorkspaceEntry, waves: string[][]): void;
  /** A stopping scope may have emptied meanwhile (a worker came back, a spawn ended): look now. */
  checkEmpty(scope: StopScope): void;
  /**
   * Nothing of the workspace is left to reap or let go now: no process, no spawn under way,
   * nothing for teardown() to wait for. Its stop then needs no signal, reaper or teardown (the
   * actor hears it with the STOP). Absent: every stop goes through signal() and the reaper.
   */
  holdsNothing?(ws: WorkspaceEntry): boolean;
  /** Resource use now, for stats() and the quota actor. */
  usage(ws: WorkspaceEntry): WorkspaceUsage;
  /** After the workspace's processes are gone, before its stop is reported: release what prepare() took. */
  teardown(ws: WorkspaceEntry): Promise<void>;
  /** The workspace is forgotten (its actor stopped): drop what was kept for it. */
  forget(ws: WorkspaceEntry): void;
  /** The Node process is exiting without a shutdown: no process may outlive it (synchronous). */
  killNow(ws: WorkspaceEntry): void;
  /** The runtime shuts down, after every workspace stopped. */
  close(): Promise<void>;
}

export interface PreparedWorkspace {
  /** The workspace's own cgroup on this machine, when one was asked and could be made. */
  cgroup: CgroupHandle | null;
  /** What the spec asked that could not be applied, and why. */
  warnings: string[];
  /** What the workspace was placed on (ws.placement), when not this machine: a Slurm job and its nodes. */
  info?: PlacementInfo;
  /** Gives back what prepare() took, when the workspace is not made after all (the runtime closed meanwhile). */
  release?(): Promise<void>;
}

/** How a placement reports what happened to the actors and the core. */
export interface PlacementEvents {
  /** An event for a child actor (command or pipeline) of a workspace. */
  toChild(ws: WorkspaceEntry, key: string, event: ChildEvent): void;
  /** Nothing of a stopping scope is left (for a workspace: before its teardown). */
  scopeEmpty(scope: StopScope, result: StopResult): void;
}
