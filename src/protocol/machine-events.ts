// The events the machine actors receive from the host, by machine: the workspace's, a
// command's, a pipeline's. Each carries `at`, the host clock's epoch ms; all are plain data
// that survives msgpack, told apart by their string `type`.
import type { SerializedError } from './errors.js';
import type { ResolvedRestartPolicy } from './specs.js';
import type { DependencyCondition, ResolvedProbe } from './supervision-spec.js';

export type StopReason = 'requested' | 'ttl' | 'shutdown' | 'quota' | 'fault' | 'restart' | 'supervision';

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
/**
 * `groupsEmpty`: the host holds nothing of the workspace to reap (no process, no spawn under
 * way, no command or pipeline, nothing of its placement to let go), so what GROUPS_EMPTY would
 * say straight after comes with the stop, and the actor need not ask for signals to hear it.
 */
export interface StopEvent { type: 'STOP'; at: number; graceMs: number; reason: StopReason; groupsEmpty?: true }
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
