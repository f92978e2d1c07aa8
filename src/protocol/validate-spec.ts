import { ShumaError } from './errors.js';
import {
  MAX_TIMER_MS,
  RESTART_DEFAULTS,
  type CommandSpec,
  type ResolvedRestartPolicy,
  type RestartPolicy,
  type WorkspaceSpec,
} from './specs.js';

// Structural checks only: what can be told from the value itself. Facts about the machine
// (does the executable exist, is the cwd a directory) are checked by the host before a spawn.

type Path = string;

function fail(field: Path, problem: string, code: 'INVALID_SPEC' | 'INVALID_ARGUMENT' = 'INVALID_SPEC'): never {
  throw new ShumaError(code, `${field} ${problem}`, { field });
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `a ${typeof value}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function checkObject(
  value: unknown,
  field: Path,
  allowed: readonly string[],
  code: 'INVALID_SPEC' | 'INVALID_ARGUMENT' = 'INVALID_SPEC',
): Record<string, unknown> {
  if (!isPlainObject(value)) fail(field, `must be an object (got ${describe(value)})`, code);
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      const hint = allowed.find((a) => a.toLowerCase().startsWith(key.toLowerCase().slice(0, 3)));
      fail(
        field === 'spec' ? key : `${field}.${key}`,
        `is not a known field${hint ? ` (did you mean '${hint}'?)` : ''}; known fields: ${allowed.join(', ')}`,
        code,
      );
    }
  }
  return value;
}

/**
 * The options object of a call (`stop(options)`, `logs(id, options)`…): absent, or a plain
 * object with only known keys. A misspelt option is an error, not a silent default.
 */
export function checkCallOptions<T extends object>(value: T | undefined | null, name: string, allowed: readonly string[]): Partial<T> {
  if (value === undefined) return {};
  return checkObject(value, name, allowed, 'INVALID_ARGUMENT') as Partial<T>;
}

function checkText(value: unknown, field: Path, { allowEmpty = false } = {}): string {
  if (typeof value !== 'string') fail(field, `must be a string (got ${describe(value)})`);
  if (!allowEmpty && value.length === 0) fail(field, 'must be a non-empty string');
  if (value.includes('\0')) fail(field, 'must not contain a NUL byte (\\0): the kernel would cut the string there');
  return value;
}

function checkDuration(value: unknown, field: Path, { allowZero = true } = {}): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    fail(field, `must be a finite number of milliseconds (got ${describe(value)})`);
  }
  if (value < 0 || (!allowZero && value === 0)) {
    fail(field, `must be ${allowZero ? '>= 0' : '> 0'} milliseconds (got ${value})`);
  }
  if (value > MAX_TIMER_MS) {
    fail(field, `must be at most ${MAX_TIMER_MS} milliseconds (24.8 days), the longest timer Node can arm (got ${value})`);
  }
  return value;
}

function checkCount(value: unknown, field: Path): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail(field, `must be a whole number >= 0 (got ${describe(value)})`);
  }
  return value;
}

function checkEnv(value: unknown, field: Path): Record<string, string> {
  if (!isPlainObject(value)) fail(field, `must be an object of strings (got ${describe(value)})`);
  for (const [key, v] of Object.entries(value)) {
    if (key.length === 0) fail(field, 'has an empty variable name: remove it or give it a name');
    if (key.includes('=')) {
      fail(
        `${field}[${JSON.stringify(key)}]`,
        "is not a valid variable name: it contains '=', which would split it; rename the key without '=' (the value goes in the object's value)",
      );
    }
    if (key.includes('\0')) fail(`${field}[${JSON.stringify(key)}]`, 'must not contain a NUL byte');
    checkText(v, `${field}.${key}`, { allowEmpty: true });
  }
  return value as Record<string, string>;
}

const RESTART_FIELDS = ['onFailure', 'backoffMs', 'maxBackoffMs', 'maxRestarts', 'resetAfterMs'] as const;

export function validateRestartPolicy(value: unknown, field: Path = 'restart'): RestartPolicy {
  const o = checkObject(value, field, RESTART_FIELDS);
  if (typeof o.onFailure !== 'boolean') fail(`${field}.onFailure`, `must be true or false (got ${describe(o.onFailure)})`);
  if (o.backoffMs !== undefined) checkDuration(o.backoffMs, `${field}.backoffMs`);
  if (o.maxBackoffMs !== undefined) checkDuration(o.maxBackoffMs, `${field}.maxBackoffMs`);
  if (o.maxRestarts !== undefined) checkCount(o.maxRestarts, `${field}.maxRestarts`);
  if (o.resetAfterMs !== undefined) checkDuration(o.resetAfterMs, `${field}.resetAfterMs`);
  const resolved = resolveRestartPolicy(o as unknown as RestartPolicy);
  if (resolved.maxBackoffMs < resolved.backoffMs) {
    fail(
      `${field}.maxBackoffMs`,
      `(${resolved.maxBackoffMs}) must be >= backoffMs (${resolved.backoffMs}): raise maxBackoffMs or lower backoffMs`,
    );
  }
  return o as unknown as RestartPolicy;
}

export function resolveRestartPolicy(policy: RestartPolicy | undefined): ResolvedRestartPolicy {
  return {
    onFailure: policy?.onFailure ?? RESTART_DEFAULTS.onFailure,
    backoffMs: policy?.backoffMs ?? RESTART_DEFAULTS.backoffMs,
    maxBackoffMs: policy?.maxBackoffMs ?? Math.max(RESTART_DEFAULTS.maxBackoffMs, policy?.backoffMs ?? 0),
    maxRestarts: policy?.maxRestarts ?? RESTART_DEFAULTS.maxRestarts,
    resetAfterMs: policy?.resetAfterMs ?? RESTART_DEFAULTS.resetAfterMs,
  };
}

const COMMAND_FIELDS = ['exec', 'argv', 'env', 'cwd', 'label', 'restart'] as const;

/** Checks a command spec's shape; `prefix` names it in messages (e.g. `nodes[1]`). */
export function validateCommandSpec(value: unknown, prefix = ''): CommandSpec {
  const at = (f: string) => (prefix ? `${prefix}.${f}` : f);
  const o = checkObject(value, prefix || 'spec', COMMAND_FIELDS);
  checkText(o.exec, at('exec'));
  if (o.argv !== undefined) {
    if (!Array.isArray(o.argv)) fail(at('argv'), `must be an array of strings (got ${describe(o.argv)})`);
    o.argv.forEach((arg, i) => checkText(arg, `${at('argv')}[${i}]`, { allowEmpty: true }));
  }
  if (o.env !== undefined) checkEnv(o.env, at('env'));
  if (o.cwd !== undefined) checkText(o.cwd, at('cwd'));
  if (o.label !== undefined) checkText(o.label, at('label'));
  if (o.restart !== undefined) validateRestartPolicy(o.restart, at('restart'));
  return o as unknown as CommandSpec;
}

const WORKSPACE_FIELDS = ['label', 'ttlMs', 'limits', 'quota', 'cgroup', 'cwd', 'env', 'flowDir'] as const;
const LIMIT_FIELDS = ['memoryBytes', 'nproc', 'nofile', 'cpuSeconds'] as const;
const QUOTA_ACTIONS = ['none', 'log', 'kill'];

export function validateWorkspaceSpec(value: unknown): WorkspaceSpec {
  const o = checkObject(value, 'spec', WORKSPACE_FIELDS);
  checkText(o.label, 'label');
  if (o.ttlMs !== undefined) checkDuration(o.ttlMs, 'ttlMs', { allowZero: false });
  if (o.limits !== undefined) {
    const limits = checkObject(o.limits, 'limits', LIMIT_FIELDS);
    for (const key of LIMIT_FIELDS) {
      if (limits[key] !== undefined) {
        checkCount(limits[key], `limits.${key}`);
        if (limits[key] === 0) fail(`limits.${key}`, 'must be > 0: leave it out for no limit');
      }
    }
  }
  if (o.quota !== undefined) {
    const quota = checkObject(o.quota, 'quota', ['memory', 'nproc']);
    for (const key of ['memory', 'nproc'] as const) {
      const action = quota[key];
      if (action !== undefined && (typeof action !== 'string' || !QUOTA_ACTIONS.includes(action))) {
        fail(`quota.${key}`, `must be one of 'none', 'log', 'kill' (got ${describe(action)})`);
      }
    }
  }
  if (o.cgroup !== undefined && typeof o.cgroup !== 'boolean') checkText(o.cgroup, 'cgroup');
  if (o.cwd !== undefined) checkText(o.cwd, 'cwd');
  if (o.env !== undefined) checkEnv(o.env, 'env');
  if (o.flowDir !== undefined) checkText(o.flowDir, 'flowDir');
  return o as unknown as WorkspaceSpec;
}

export function validateGraceMs(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  return checkDuration(value, 'graceMs');
}
