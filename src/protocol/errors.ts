// Every error code shuma can raise, in one place, so users can switch on `code` safely.
export const ERROR_CODES = [
  'WORKSPACE_NOT_FOUND',
  'PIPELINE_NOT_FOUND',
  'COMMAND_NOT_FOUND',
  'SAVED_PIPELINE_NOT_FOUND',
  'INVALID_SPEC',
  'INVALID_ARGUMENT',
  'SPAWN_FAILED',
  'WORKSPACE_STOPPED',
  // A workspace not yet running (still starting, or a placed one waiting for its allocation): the
  // same call succeeds once createWorkspace() resolves, where WORKSPACE_STOPPED never will.
  'WORKSPACE_STARTING',
  'RUNTIME_CLOSED',
  'ACTOR_FAILED',
  // A command waiting for its dependencies learnt that one can never hold (it ended, gave up),
  // or its group stopped it before it started.
  'DEPENDENCY_FAILED',
  // The state directory: held by another runtime, unusable (a file, a symlink, writable by
  // others, unreadable), or a snapshot that could not be written.
  'STATE_DIR_LOCKED',
  'STATE_DIR_INVALID',
  'SNAPSHOT_WRITE_FAILED',
  // The daemon and its control socket (`shuma daemon`, the client commands): a directory or
  // socket path that cannot be used safely, another daemon already serving, none serving, a
  // frame that is not a request, a label that names more than one actor.
  'CONTROL_DIR_INVALID',
  'SOCKET_PATH_TOO_LONG',
  'DAEMON_RUNNING',
  'NO_DAEMON',
  'BAD_REQUEST',
  // A client of the control socket whose uid is neither the daemon's nor root.
  'PEER_REFUSED',
  'AMBIGUOUS_NAME',
  // A workspace placed on a cluster engine (Slurm): the engine refused the request (its answer
  // quoted), or no engine could be reached at all.
  'PLACEMENT_FAILED',
  'PLACEMENT_UNAVAILABLE',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const BRAND = Symbol.for('shuma.error');

export interface ShumaErrorOptions {
  /** The OS error code behind a failure, e.g. `ENOENT` for a missing executable. */
  cause?: string;
  /** The spec field that was wrong, e.g. `restart.backoffMs`. */
  field?: string;
}

/**
 * The one error type of the public API. `message` starts with the code and says what was
 * wrong and how to fix it; `detail` is the same without the code.
 */
export class ShumaError extends Error {
  readonly code: ErrorCode;
  readonly detail: string;
  readonly field: string | undefined;
  readonly osCode: string | undefined;

  constructor(code: ErrorCode, detail: string, options: ShumaErrorOptions = {}) {
    super(`${code}: ${detail}`);
    this.name = 'ShumaError';
    this.code = code;
    this.detail = detail;
    this.field = options.field;
    this.osCode = options.cause;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/** Works across realms and module copies, unlike `instanceof`. */
export function isShumaError(value: unknown): value is ShumaError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

/** An error as plain data, so it can cross a thread or a socket and be rethrown there. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  /** A ShumaError's OS error code (`ENOENT`…): a refused restart's context says why without parsing the message. */
  osCode?: string;
  /** A ShumaError's spec field that was wrong. */
  field?: string;
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const { code, osCode, field } = error as { code?: unknown; osCode?: unknown; field?: unknown };
    return {
      name: error.name,
      message: error.message,
      ...(error.stack ? { stack: error.stack } : {}),
      ...(typeof code === 'string' ? { code } : {}),
      ...(typeof osCode === 'string' ? { osCode } : {}),
      ...(typeof field === 'string' ? { field } : {}),
    };
  }
  return { name: 'Error', message: String(error) };
}
