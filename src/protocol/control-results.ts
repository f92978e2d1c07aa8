import type { ApplyReport } from './apply-spec.js';
import type { CommandDescription } from './command-description.js';
import type { WorkspaceStats } from './stats.js';

// What each control op answers (the `result` of its final response, the `event`s of a stream):
// the rows `shuma ps` and `stats` print, and one result type per op (`ControlResults`).


/** The latest run of one supervised command (a relaunch is a new run of the same command), in its workspace's row. */
export interface CommandRow {
  /** The latest run's id; null when the command has no run in this daemon (restored as stopped). */
  id: string | null;
  commandKey: string;
  label: string;
  /** The command actor's state: running, backoff, exited, gaveUp, stopped… */
  state: string;
  /** The running process; null when none runs (ended, or waiting in backoff). */
  pid: number | null;
  alive: boolean;
  /** In backoff: when the next run starts (epoch ms); null otherwise. */
  restartAt?: number | null;
  exitStatus: number | null;
  exitSignal: string | null;
  restarts: number;
  startedAt: number | null;
  logBytes: number;
  /** The Slurm node its latest run is on, for a Slurm-placed workspace. */
  node?: string;
}

export interface WorkspaceRow {
  id: string;
  label: string;
  state: string;
  uptimeMs: number;
  commands: CommandRow[];
  /** Each supervision group of it that gave up, and why (absent: none did). */
  gaveUp?: string[];
}

export interface PipelineRow {
  id: string;
  label: string;
  workspace: { id: string; label: string };
  state: string;
  /** The current attempt's runs, in node order; `exitSignal` set when a signal ended it. */
  nodes: Array<{ label: string; pid: number; commandId: string; alive: boolean; exitStatus: number | null; exitSignal: string | null }>;
}

export interface PsResult {
  workspaces: WorkspaceRow[];
  pipelines: PipelineRow[];
}

export interface RunResult {
  workspace: { id: string; label: string; created: boolean };
  command: { id: string; commandKey: string; label: string; pid: number; node?: string };
}

export interface LogsResult { command: { id: string; label: string; workspace: string }; data: Uint8Array }
export interface LogsEvent { data?: Uint8Array; /** Bytes written while this client was not reading fast enough, lost from the ring. */ skipped?: number; /** A relaunch: a new run of the command is followed. */ run?: { id: string; pid: number } }

export interface StopResultData { kind: 'workspace' | 'pipeline' | 'command'; id: string; label: string; reaped: number; escaped: number[] }

/** A run that a restart started: `ws/label`, the command's key, the new run. */
export interface RestartedCommand { name: string; commandKey: string; id: string; pid: number; restarts: number }
export interface RestartResult { kind: 'workspace' | 'command'; id: string; label: string; restarted: RestartedCommand[] }
export interface FlushResult { flushed: 'all' | 'workspace' | 'command'; name: string | null }
export interface DeleteResult { name: string; commandKey: string; reaped: number }

export interface StatsRow {
  id: string;
  label: string;
  state: string;
  stats: WorkspaceStats | null;
  commands: CommandRow[];
}
export interface StatsEvent { at: number; workspaces: StatsRow[] }

export interface PipelineStarted { id: string; label: string; workspace: { id: string; label: string; created: boolean }; nodes: Array<{ label: string; pid: number; commandId: string }> }

export interface HealthResult {
  pid: number;
  socket: string;
  stateDir: string;
  startedAt: number;
  uptimeMs: number;
  aliveWorkspaces: number;
  aliveCommands: number;
  alivePipelines: number;
  activeFlows: number;
  workerRestarts: number;
  /** Whether the daemon checks each client's uid (SO_PEERCRED, through the native addon). */
  peerCheck: boolean;
  warnings: string[];
  /** The inspector page, when the daemon was started with --inspect. */
  inspectorUrl: string | null;
}

export type ApplyResult = ApplyReport;

export interface WhyResult { kind: 'command' | 'pipeline'; id: string; label: string; entries: Array<{ at: number; text: string }> }

/** What each op answers with (its final `result`). */
export interface ControlResults {
  ps: PsResult;
  run: RunResult;
  logs: LogsResult;
  stop: StopResultData;
  stats: StatsEvent;
  pipelineRun: PipelineStarted;
  pipelineSave: { name: string };
  pipelineList: { saved: string[] };
  pipelineRunSaved: PipelineStarted;
  pipelineDrop: { name: string; dropped: boolean };
  health: HealthResult;
  apply: ApplyResult;
  describe: CommandDescription;
  why: WhyResult;
  restart: RestartResult;
  flush: FlushResult;
  delete: DeleteResult;
  cancel: { cancelled: boolean };
}
