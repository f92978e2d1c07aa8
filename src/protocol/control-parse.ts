import { checkCount, checkObject, checkText, describe, isPlainObject } from './checks.js';
import type { ControlOp, ControlRequest, ControlResponse } from './control.js';
import { ShumaError } from './errors.js';

// Checking what came off the control socket (control.ts) before anyone acts on it: a request's
// op, its fields and their simple types (the daemon's side), a response's shape (the client's).
// Specs inside a request are left to the runtime's validators, so a bad one gets the API's error.


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
