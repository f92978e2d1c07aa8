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
// checkStructure before msgpackr sees it, and every request is checked here for its shape; the
// specs inside it are checked by the runtime's own validators, so a bad one gets the API's error.
import { checkCount, checkObject, checkText, describe, isPlainObject } from './checks.js';
import { decodeUntrusted, encode } from './codec.js';
import { ShumaError } from './errors.js';
import type { WorkspaceStats } from './stats.js';
import type { ApplyReport } from './apply-spec.js';
import type { CommandDescription } from './command-description.js';
import type { CommandSpec, PlacementSpec } from './specs.js';

/** A request frame larger than this is refused and the connection closed. */
export const MAX_REQUEST_BYTES = 1024 * 1024;
/** Responses carry logs (two 1 MiB rings by default) and `ps` of thousands of processes. */
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** Requests are flat; a spec nests a few levels. msgpackr's own recursion is far deeper. */
export const MAX_FRAME_DEPTH = 32;
export const FRAME_HEADER_BYTES = 4;

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

/** The fields each op takes besides `id` and `op`, and which of them it needs. */
const OP_FIELDS: { [K in ControlOp]: { required: readonly string[]; optional: readonly string[] } } = {
  ps: { required: [], optional: [] },
  run: { required: ['workspace', 'spec'], optional: ['placement'] },
  logs: { required: ['command', 'stream'], optional: ['tailBytes', 'lines', 'follow'] },
  stop: { required: ['target'], optional: ['graceMs'] },
  stats: { required: [], optional: ['workspace', 'everyMs'] },
  pipelineRun: { required: ['spec'], optional: [] },
  pipelineSave: { required: ['name', 'spec'], optional: [] },
  pipelineList: { required: [], optional: [] },
  pipelineRunSaved: { required: ['name'], optional: ['workspace'] },
  pipelineDrop: { required: ['name'], optional: [] },
  health: { required: [], optional: [] },
  apply: { required: ['file'], optional: ['prune', 'dryRun'] },
  describe: { required: ['target'], optional: [] },
  why: { required: ['target'], optional: [] },
  restart: { required: ['target'], optional: [] },
  flush: { required: [], optional: ['target'] },
  delete: { required: ['target'], optional: ['graceMs'] },
  cancel: { required: ['target'], optional: [] },
};

export const CONTROL_OPS = Object.keys(OP_FIELDS) as ControlOp[];

/** The request id of a decoded frame, if it has a usable one: an error answer can then name it. */
export function requestIdOf(value: unknown): number | null {
  return isPlainObject(value) && typeof value.id === 'number' && Number.isSafeInteger(value.id) && value.id >= 0 ? value.id : null;
}

/**
 * Checks a decoded frame's shape: a known op, its fields and their simple types. Specs are left
 * to the runtime's validators. Throws BAD_REQUEST (not a request at all) or INVALID_ARGUMENT.
 */
export function parseRequest(value: unknown): ControlRequest {
  if (!isPlainObject(value)) throw new ShumaError('BAD_REQUEST', `a request must be a map with id and op (got ${describe(value)})`);
  if (requestIdOf(value) === null) throw new ShumaError('BAD_REQUEST', `request.id must be a whole number >= 0 (got ${describe(value.id)})`);
  const op = value.op;
  if (typeof op !== 'string' || !Object.hasOwn(OP_FIELDS, op)) {
    throw new ShumaError('BAD_REQUEST', `request.op ${describe(op)} is not an operation; known: ${CONTROL_OPS.join(', ')}`);
  }
  const fields = OP_FIELDS[op as ControlOp];
  checkObject(value, 'request', ['id', 'op', ...fields.required, ...fields.optional], 'INVALID_ARGUMENT');
  for (const key of fields.required) {
    if (value[key] === undefined) throw new ShumaError('INVALID_ARGUMENT', `request.${key} is missing: '${op}' needs ${fields.required.join(', ')}`, { field: key });
  }
  const text = (key: string) => {
    if (value[key] !== undefined) argument(() => checkText(value[key], key));
  };
  const count = (key: string) => {
    if (value[key] !== undefined) argument(() => checkCount(value[key], key));
  };
  ['workspace', 'command', 'target', 'name'].forEach((key) => (op === 'cancel' && key === 'target' ? count(key) : text(key)));
  ['tailBytes', 'lines', 'graceMs', 'everyMs'].forEach(count);
  for (const flag of ['follow', 'prune', 'dryRun']) {
    if (value[flag] !== undefined && typeof value[flag] !== 'boolean') {
      throw new ShumaError('INVALID_ARGUMENT', `${flag} must be true or false (got ${describe(value[flag])})`, { field: flag });
    }
  }
  if (op === 'logs' && !['stdout', 'stderr', 'both'].includes(value.stream as string)) {
    throw new ShumaError('INVALID_ARGUMENT', `stream must be 'stdout', 'stderr' or 'both' (got ${describe(value.stream)})`, { field: 'stream' });
  }
  if (op === 'stats' && value.everyMs !== undefined && (value.everyMs as number) < 100) {
    throw new ShumaError('INVALID_ARGUMENT', `everyMs must be at least 100 (got ${String(value.everyMs)})`, { field: 'everyMs' });
  }
  return value as unknown as ControlRequest;
}

/** The checks of checks.ts say INVALID_SPEC; a request's own fields are arguments. */
function argument(check: () => unknown): void {
  try {
    check();
  } catch (error) {
    const e = error as ShumaError;
    throw new ShumaError('INVALID_ARGUMENT', e.detail, e.field === undefined ? {} : { field: e.field });
  }
}

// ── responses ────────────────────────────────────────────────────────────────────────

export interface ControlErrorData { code: string; message: string }

export type ControlResponse =
  | { kind: 'result'; id: number; ok: true; result: unknown }
  | { kind: 'event'; id: number; ok: true; event: unknown }
  /** id null: the frame had no request id to answer (garbage, or not a map). */
  | { kind: 'error'; id: number | null; ok: false; error: ControlErrorData };

export function parseResponse(value: unknown): ControlResponse {
  const bad = () => new ShumaError('BAD_REQUEST', `the daemon sent a frame that is not a response (${describe(value)}): is it the same shuma version?`);
  if (!isPlainObject(value)) throw bad();
  const { kind, id } = value;
  if (kind === 'error') {
    const error = value.error;
    if ((id !== null && typeof id !== 'number') || !isPlainObject(error) || typeof error.code !== 'string' || typeof error.message !== 'string') throw bad();
    return value as unknown as ControlResponse;
  }
  if ((kind !== 'result' && kind !== 'event') || typeof id !== 'number') throw bad();
  return value as unknown as ControlResponse;
}

// ── what the ops answer ──────────────────────────────────────────────────────────────

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

// ── frames ───────────────────────────────────────────────────────────────────────────

/** One frame: the length prefix and the message, in a buffer of its own. */
export function encodeFrame(value: unknown): Buffer {
  const body = encode(value);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}

/** Decodes one frame's body after the restricted walk; throws BAD_REQUEST on bytes it refuses. */
export function decodeFrame(body: Uint8Array): unknown {
  if (body.length === 0) throw new ShumaError('BAD_REQUEST', 'an empty frame: a frame holds one msgpack value');
  const decoded = decodeUntrusted(body, MAX_FRAME_DEPTH);
  if (decoded.ok) return decoded.value;
  throw new ShumaError(
    'BAD_REQUEST',
    decoded.stage === 'refused' ? `the frame is not msgpack shuma reads: ${decoded.reason}` : `the frame does not decode: ${decoded.reason}`,
  );
}

/**
 * Cuts a byte stream into frame bodies. A length prefix over `maxBytes` cannot be skipped
 * safely (the rest may never come): `push` throws, and the connection should be closed.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const bodies: Buffer[] = [];
    while (this.buffered >= FRAME_HEADER_BYTES) {
      const head = this.peek(FRAME_HEADER_BYTES);
      const length = head.readUInt32BE(0);
      if (length > this.maxBytes) {
        throw new ShumaError('BAD_REQUEST', `a frame of ${length} bytes is over the ${this.maxBytes}-byte cap`);
      }
      if (this.buffered < FRAME_HEADER_BYTES + length) break;
      const all = this.peek(FRAME_HEADER_BYTES + length);
      bodies.push(Buffer.from(all.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length)));
      this.consume(FRAME_HEADER_BYTES + length);
    }
    return bodies;
  }

  private peek(bytes: number): Buffer {
    if (this.chunks[0]!.length < bytes) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }

  private consume(bytes: number): void {
    const first = this.chunks[0]!;
    this.chunks[0] = first.subarray(bytes);
    if (this.chunks[0].length === 0) this.chunks.shift();
    this.buffered -= bytes;
  }
}
