// The whole wire protocol between the host (main thread) and the workers that run the
// machine actors: one string-tagged union per direction. Everything here is plain data
// that survives msgpack; nothing is told apart by probing for a key.
import type { SerializedError } from './errors.js';
import type { ResolvedRestartPolicy } from './specs.js';
import type { DependencyCondition, ResolvedProbe, SupervisionSpec } from './supervision-spec.js';

export type Signal = 'SIGTERM' | 'SIGKILL' | 'SIGINT' | 'SIGHUP' | 'SIGQUIT' | 'SIGUSR1' | 'SIGUSR2';

export type StopReason = 'requested' | 'ttl' | 'shutdown' | 'quota' | 'fault' | 'restart' | 'supervision';

// ── events the machines receive (each carries `at`, the host clock's epoch ms) ──────────

export interface StartEvent { type: 'START'; at: number }
export interface RunEvent {
  type: 'RUN';
  at: number;
  key: string;
  label: string;
  policy: ResolvedRestartPolicy;
  /** How to tell it is ready; null or absent: ready once spawned. */
  probe?: ResolvedProbe | null;
  /** Commands of the workspace (by key) that must hold their condition before it starts. */
  deps?: Array<{ key: string; label: string; condition: DependencyCondition; ended?: EndedPhase }>;
  /** Restarted by request after it ended: the new actor keeps the count. */
  restarts?: number;
  /** The named group (WorkspaceSpec.groups) that supervises it; absent: the workspace's own. */
  group?: string;
}
/** How a command that ended did, as its dependants see it. */
export type EndedPhase = 'succeeded' | 'exited' | 'gaveUp' | 'failed' | 'stopped' | 'unmet';
export interface StopEvent { type: 'STOP'; at: number; graceMs: number; reason: StopReason }
/** No process of any of the workspace's process groups is left. */
export interface GroupsEmptyEvent { type: 'GROUPS_EMPTY'; at: number; reaped: number }
/** Makes the receiving actor throw: chaos drills and the isolation tests use it. */
export interface FaultEvent { type: 'FAULT'; message: string }

export interface RunPipelineEvent {
  type: 'RUN_PIPELINE';
  at: number;
  key: string;
  label: string;
  nodeLabels: string[];
  /** Nodes whose output feeds another node: their SIGPIPE is the end of a reader, not a failure. */
  upstreamLabels: string[];
  discern: 'any' | 'last';
  policy: ResolvedRestartPolicy;
  /** rest_for_one only where the runtime can splice (tapped, on this machine); else one_for_all. */
  strategy?: 'one_for_all' | 'rest_for_one';
  /** Under rest_for_one: each node's label → the labels its failure restarts (itself and downstream). */
  restartSets?: Record<string, string[]>;
  /** Why the strategy asked for is not the one applied (rest_for_one without tap), for why(). */
  strategyNote?: string | null;
}

/** The quota actor saw a limit crossed (once per episode); the workspace applies its policy. */
export interface QuotaBreachEvent {
  type: 'QUOTA_BREACH';
  at: number;
  resource: 'memory' | 'nproc';
  used: number;
  limit: number;
  action: 'log' | 'kill';
  /** e.g. `memory: 12.50 MiB > 10.00 MiB limit` */
  message: string;
}

export type WorkspaceEvent =
  | StartEvent
  | RunEvent
  | RunPipelineEvent
  | StopEvent
  | GroupsEmptyEvent
  | QuotaBreachEvent
  | ResumeEvent
  | FaultEvent;

export interface SpawnedEvent { type: 'SPAWNED'; at: number; runId: string; pid: number }
export interface SpawnFailedEvent { type: 'SPAWN_FAILED'; at: number; error: SerializedError }
export interface ExitedEvent {
  type: 'EXITED';
  at: number;
  runId: string;
  code: number | null;
  signal: string | null;
  status: number;
}
/** Why a command or pipeline is told to stop: its workspace's reason, e.g. a quota breach. */
export interface StopCause {
  reason?: StopReason | null;
  /** e.g. the quota breach `nproc: 3 alive > 2 limit` */
  detail?: string | null;
}
/** With `graceMs`, the command alone is stopped: it signals its run (SIGKILL once the grace is over). */
export interface CommandStopEvent extends StopCause { type: 'STOP'; at: number; graceMs?: number }
/** The actor was restored from a snapshot: timers are re-armed from their deadlines, counted from `at`. */
export interface ResumeEvent { type: 'RESUME'; at: number }
/**
 * The actor was restored and its process did not survive the runtime's restart (stopped by a
 * clean shutdown, or killed by the orphan policy after a crash): no exit will be reported.
 */
export interface RunLostEvent { type: 'RUN_LOST'; at: number }

/** A readiness probe's outcome for one run (the host ran it, or the command told). */
export interface ProbeResultEvent { type: 'PROBE_RESULT'; at: number; runId: string; ok: boolean; detail: string }

export type CommandEvent =
  | ProbeResultEvent
  | SpawnedEvent
  | SpawnFailedEvent
  | ExitedEvent
  | CommandStopEvent
  | ResumeEvent
  | RunLostEvent
  | FaultEvent;

export interface PipelineSpawnedEvent {
  type: 'PIPELINE_SPAWNED';
  at: number;
  attempt: number;
  runs: Array<{ label: string; runId: string; pid: number }>;
}
export interface PipelineSpawnFailedEvent { type: 'PIPELINE_SPAWN_FAILED'; at: number; error: SerializedError }
export interface NodeExitedEvent {
  type: 'NODE_EXITED';
  at: number;
  label: string;
  runId: string;
  code: number | null;
  signal: string | null;
  status: number;
}
export interface PipelineStopEvent extends StopCause { type: 'STOP'; at: number; graceMs?: number }
/** No process of the pipeline's current attempt is left. */
export interface PipelineEmptyEvent { type: 'PIPELINE_EMPTY'; at: number }

export type PipelineEvent =
  | PipelineSpawnedEvent
  | PipelineSpawnFailedEvent
  | NodeExitedEvent
  | PipelineStopEvent
  | PipelineEmptyEvent
  | ResumeEvent
  | RunLostEvent
  | FaultEvent;

/** What the host sends to a child actor of a workspace (a command or a pipeline). */
export type ChildEvent = CommandEvent | PipelineEvent;

// ── what the machines ask of the host (emitted by the machines, relayed by the worker) ──

/**
 * A command actor's standing order for the run it asks for: if that run exits (failing, or at
 * all with `always`) while `restarts` < `maxRestarts` (0: no bound), the host starts the next
 * run at once, before the actor has heard the exit; it tells the actor of it when the actor
 * asks (as it will), and kills it if the actor decides otherwise. Only with no backoff.
 */
export interface RelaunchOrder { always: boolean; maxRestarts: number }
export interface SpawnRequest { type: 'spawn'; wsId: string; key: string; restarts: number; relaunch?: RelaunchOrder }
export interface SignalRequest {
  type: 'signal';
  wsId: string;
  signal: Signal;
  /**
   * SIGTERM in waves of command keys, dependants first: each wave once the one before has ended
   * (what no wave names goes with the first). A later SIGKILL ends every wave at once.
   */
  waves?: string[][];
}
export interface SpawnPipelineRequest {
  type: 'spawnPipeline';
  wsId: string;
  pipelineId: string;
  attempt: number;
  /** Only these nodes (rest_for_one), spliced in beside those that run on; absent: all of them. */
  nodes?: string[];
}
/** A node that ended and is not restarted: the runtime lets go of its stdin, its writer sees the end. */
export interface ReleasePipelineInputRequest { type: 'releasePipelineInput'; wsId: string; pipelineId: string; label: string }
/** Signals the processes of one pipeline only; the reaper reports PIPELINE_EMPTY when none is left. */
export interface SignalPipelineRequest { type: 'signalPipeline'; wsId: string; pipelineId: string; signal: Signal }
/** Run the command's readiness probe once against this run; the answer is PROBE_RESULT. */
export interface ProbeRequest { type: 'probe'; wsId: string; key: string; runId: string }
/** Signals one run's process group: a command stopped alone (its workspace going on), a liveness
 * failure, or a restart its group decided. */
export interface SignalRunRequest {
  type: 'signalRun';
  wsId: string;
  runId: string;
  signal: Signal;
  /** The command's key, when its supervisor ends the run. */
  key?: string;
  /** unhealthy: its liveness probe failed; group: its group restarts it; stop: stopped. */
  reason?: 'unhealthy' | 'startTimeout' | 'group' | 'stop';
}
export interface LogRequest {
  type: 'log';
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields: Record<string, string | number | boolean | null>;
}
export type HostRequest =
  | SpawnRequest
  | SignalRequest
  | SpawnPipelineRequest
  | SignalPipelineRequest
  | ReleasePipelineInputRequest
  | ProbeRequest
  | SignalRunRequest
  | LogRequest;

/** A child's request on its way to the host: sent to its parent, the workspace actor, which emits it. */
export interface HostRequestEvent { type: 'HOST_REQUEST'; request: HostRequest }

// ── snapshots and inspection as plain records ───────────────────────────────────────

export type PlainValue = string | number | boolean | null | PlainValue[] | { [key: string]: PlainValue };
export type StateValue = string | { [key: string]: StateValue };

export interface ActorSnapshot {
  value: StateValue;
  status: 'active' | 'done' | 'error' | 'stopped';
  context: { [key: string]: PlainValue };
  error?: SerializedError;
}

export type InspectionKind = 'actor' | 'event' | 'snapshot' | 'microstep' | 'action';

export interface PendingTimer {
  /** The delay's name in the machine: 'ttl', 'backoff' or 'grace'. */
  name: string;
  deadline: number;
}

export interface InspectionRecord {
  kind: InspectionKind;
  /** Epoch ms on the worker's clock when the record was made. */
  at: number;
  /** The workspace whose actor tree this record belongs to. */
  rootId: string;
  /** The actor's own id: the workspace id, or the key of a command or pipeline actor. */
  actorId: string;
  /** Which machine runs in that actor: 'workspace' | 'command' | 'pipeline'. */
  machine: string | null;
  /** On snapshot records: the actor's pending timers, as absolute deadlines (epoch ms). */
  timers?: PendingTimer[];
  sourceId?: string | null;
  event?: { [key: string]: PlainValue };
  snapshot?: ActorSnapshot;
  action?: { type: string; params: PlainValue };
  transitions?: Array<{ source: string; targets: string[]; eventType: string }>;
}

// ── host → worker ───────────────────────────────────────────────────────────────────

export interface CreateWorkspaceMessage {
  type: 'createWorkspace';
  wsId: string;
  label: string;
  ttlMs: number | null;
  at: number;
  supervision?: SupervisionSpec | null;
  groups?: Record<string, SupervisionSpec> | null;
}
export interface WorkspaceEventMessage { type: 'workspaceEvent'; wsId: string; event: WorkspaceEvent }
/** An event for a child actor of the workspace: a command or a pipeline, by its key. */
export interface ChildEventMessage { type: 'childEvent'; wsId: string; key: string; event: ChildEvent }
/**
 * Host a workspace actor again from its persisted snapshot (after a restart of the runtime, or
 * of a worker thread that died). Its timers are re-armed from their deadlines counted from `at`;
 * the children named in `lostKeys` lost their processes and hear RUN_LOST.
 */
export interface RestoreWorkspaceMessage {
  type: 'restoreWorkspace';
  wsId: string;
  label: string;
  ttlMs: number | null;
  at: number;
  snapshot: PlainValue;
  lostKeys: string[];
}
/** Drop a stopped workspace actor from the worker's memory. */
export interface ReleaseMessage { type: 'release'; wsId: string }
/** The manual clock moved: the worker's simulated clock follows. */
export interface ClockMessage { type: 'clock'; now: number; seq: number }
export interface InspectMessage { type: 'inspect'; enabled: boolean }

export type ToWorker =
  | CreateWorkspaceMessage
  | RestoreWorkspaceMessage
  | WorkspaceEventMessage
  | ChildEventMessage
  | ReleaseMessage
  | ClockMessage
  | InspectMessage;

// ── worker → host ───────────────────────────────────────────────────────────────────

export interface HostRequestMessage { type: 'hostRequest'; request: HostRequest }
export interface SnapshotMessage { type: 'snapshot'; wsId: string; snapshot: ActorSnapshot }
export interface ChildSnapshotMessage {
  type: 'childSnapshot';
  wsId: string;
  key: string;
  machine: 'command' | 'pipeline';
  snapshot: ActorSnapshot;
}
/**
 * The workspace actor's persisted snapshot, sent after each change. With `children` (its
 * children's keys, in order), `snapshot.children` holds only the entries that are new or
 * changed; the others are those of the last one (persisted-delta.ts).
 */
export interface PersistedMessage { type: 'persisted'; wsId: string; snapshot: PlainValue; children?: string[] }
/**
 * One child's persisted snapshot, sent when only it changed: it replaces
 * `children[key].snapshot` in the workspace's last whole one (XState's own layout).
 */
export interface PersistedChildMessage { type: 'persistedChild'; wsId: string; key: string; snapshot: PlainValue }
export interface ActorErrorMessage { type: 'actorError'; wsId: string; error: SerializedError }
export interface InspectionMessage { type: 'inspection'; record: InspectionRecord }
export interface ClockAckMessage { type: 'clockAck'; seq: number }

export type FromWorker =
  | HostRequestMessage
  | SnapshotMessage
  | ChildSnapshotMessage
  | PersistedMessage
  | PersistedChildMessage
  | ActorErrorMessage | InspectionMessage | ClockAckMessage;

