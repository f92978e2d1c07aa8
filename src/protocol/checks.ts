import { ShumaError } from './errors.js';
import { MAX_TIMER_MS } from './specs.js';

// Structural checks only: what can be told from the value itself. Facts about the machine
// (does the executable exist, is the cwd a directory) are checked by the host before a spawn.

export type Path = string;

export function fail(field: Path, problem: string, code: 'INVALID_SPEC' | 'INVALID_ARGUMENT' = 'INVALID_SPEC'): never {
  throw new ShumaError(code, `${field} ${problem}`, { field });
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `a ${typeof value}`;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function checkObject(
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

export function checkText(value: unknown, field: Path, { allowEmpty = false } = {}): string {
  if (typeof value !== 'string') fail(field, `must be a string (got ${describe(value)})`);
  if (!allowEmpty && value.length === 0) fail(field, 'must be a non-empty string');
  if (value.includes('\0')) fail(field, 'must not contain a NUL byte (\\0): the kernel would cut the string there');
  return value;
}

export function checkDuration(value: unknown, field: Path, { allowZero = true } = {}): number {
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

export function checkCount(value: unknown, field: Path): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail(field, `must be a whole number >= 0 (got ${describe(value)})`);
  }
  return value;
}

export function checkEnv(value: unknown, field: Path): Record<string, string> {
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

/** A ULID: 26 Crockford base-32 characters, the first at most 7 (48 bits of time). */
export const ULID_PATTERN = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;
