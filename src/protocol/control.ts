// The control socket's whole protocol: what `shuma ps`, `run`, `logs`… send to `shuma daemon`,
// and what comes back.
//
//   frame    = 4-byte big-endian length, then that many bytes of msgpack (the codec's options)
//   request  = { id, op, ...args }                    client → daemon, at most 1 MiB a frame
//   response = { kind: 'result', id, ok: true, result }         the answer; the request is over
//            | { kind: 'error', id, ok: false, error: { code, message } }    also final
//            | { kind: 'event', id, ok: true, event }   one item of a stream (`logs -f`, `stats -w`)
//
// A stream goes on until the daemon ends it with a result (the command or workspace is gone), the
// client sends `cancel`, or the client closes the connection. Every frame is walked by
// checkStructure before msgpackr sees it, and every request is checked for its shape
// (control-parse.ts); the specs inside it are checked by the runtime's own validators, so a bad
// one gets the API's error.
//
// This file is the card: the requests and the responses, types only. What each op answers is
// control-results.ts; checking a decoded request or response, control-parse.ts; the framing on
// the socket, control-frames.ts.
import type { CommandSpec, PlacementSpec } from './specs.js';

// ── requests ─────────────────────────────────────────────────────────────────────────

/** Workspaces, commands and pipelines are named by id or label (`ws/label` to narrow a label). */
export type Name = string;

export interface PsRequest { id: number; op: 'ps' }
export interface RunRequest {
  id: number;
  op: 'run';
  /** A workspace's id or label; a label no workspace has makes a new workspace with that label. */
  workspace: Name;
  spec: CommandSpec;
  /** Where a workspace made for this command is placed (`--slurm-nodes N`); ignored for an existing one. */
  placement?: PlacementSpec;
}
export interface LogsRequest {
  id: number;
  op: 'logs';
  command: Name;
  stream: 'stdout' | 'stderr' | 'both';
  tailBytes?: number;
  /** The last this many lines of each stream (instead of bytes). */
  lines?: number;
  /** Stream what is written from now on, too (events of `{ data }`), across relaunches. */
  follow?: boolean;
}
export interface StopRequest { id: number; op: 'stop'; target: Name; graceMs?: number }
export interface StatsRequest {
  id: number;
  op: 'stats';
  workspace?: Name;
  /** Stream a fresh sample of every workspace this often (the first at once). */
  everyMs?: number;
}
export interface PipelineRunRequest {
  id: number;
  op: 'pipelineRun';
  /** A pipeline spec whose `workspace` is a name; as for `run`, a new label makes a workspace. */
  spec: unknown;
}
export interface PipelineSaveRequest { id: number; op: 'pipelineSave'; name: string; spec: unknown }
export interface PipelineListRequest { id: number; op: 'pipelineList' }
export interface PipelineRunSavedRequest { id: number; op: 'pipelineRunSaved'; name: string; workspace?: Name }
export interface PipelineDropRequest { id: number; op: 'pipelineDrop'; name: string }
export interface HealthRequest { id: number; op: 'health' }
/** A spec file's content (as `loadSpecFile` parsed it); checked again by the daemon. */
export interface ApplyRequest { id: number; op: 'apply'; file: unknown; prune?: boolean; dryRun?: boolean }
/** One command described (`ws.describe`). */
export interface DescribeRequest { id: number; op: 'describe'; target: Name }
export interface WhyRequest { id: number; op: 'why'; target: Name }
/** Empties log files: of one command, of a workspace's commands, or all (no target). */
export interface FlushRequest { id: number; op: 'flush'; target?: Name }
/** A new run of one command now, or of every command of a workspace. */
export interface RestartRequest { id: number; op: 'restart'; target: Name }
/** One command stopped and forgotten. */
export interface DeleteRequest { id: number; op: 'delete'; target: Name; graceMs?: number }
/** Ends the stream started by request `target` on this connection. */
export interface CancelRequest { id: number; op: 'cancel'; target: number }

export type ControlRequest =
  | PsRequest
  | RunRequest
  | LogsRequest
  | StopRequest
  | StatsRequest
  | PipelineRunRequest
  | PipelineSaveRequest
  | PipelineListRequest
  | PipelineRunSavedRequest
  | PipelineDropRequest
  | HealthRequest
  | ApplyRequest
  | DescribeRequest
  | WhyRequest
  | RestartRequest
  | DeleteRequest
  | FlushRequest
  | CancelRequest;

export type ControlOp = ControlRequest['op'];

// ── responses ────────────────────────────────────────────────────────────────────────

export interface ControlErrorData { code: string; message: string }

export type ControlResponse =
  | { kind: 'result'; id: number; ok: true; result: unknown }
  | { kind: 'event'; id: number; ok: true; event: unknown }
  /** id null: the frame had no request id to answer (garbage, or not a map). */
  | { kind: 'error'; id: number | null; ok: false; error: ControlErrorData };

