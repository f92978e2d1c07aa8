import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { ShumaError } from '../../protocol/errors.js';

// Facts about the machine that must hold before a spawn. Node reports a missing cwd as a
// missing executable and some failures only asynchronously; checking first lets every
// failure say exactly what is wrong. The checks are synchronous on purpose: a stat of a local
// path takes a few microseconds, while each trip through libuv's thread pool costs tens (and
// more on a loaded machine) — three of them per run were a visible part of a spawn.

function osCode(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : 'EUNKNOWN';
}

/** The directory a command runs in, as an absolute path that exists. */
export async function checkCwd(
  cwd: string,
  field: string,
  code: 'SPAWN_FAILED' | 'INVALID_SPEC' = 'SPAWN_FAILED',
): Promise<string> {
  const absolute = path.resolve(cwd);
  let info;
  try {
    info = statSync(absolute);
  } catch (error) {
    throw new ShumaError(
      code,
      `${field} '${cwd}' does not exist (${osCode(error)}): create it or pick another working directory`,
      { cause: osCode(error), field },
    );
  }
  if (!info.isDirectory()) {
    throw new ShumaError(code, `${field} '${cwd}' is not a directory: give a directory as the working directory`, {
      cause: 'ENOTDIR',
      field,
    });
  }
  return absolute;
}

function executableAt(file: string): 'ok' | 'missing' | 'directory' | 'not-executable' {
  let info;
  try {
    info = statSync(file);
  } catch {
    return 'missing';
  }
  if (info.isDirectory()) return 'directory';
  try {
    accessSync(file, constants.X_OK);
  } catch {
    return 'not-executable';
  }
  return 'ok';
}

/**
 * The absolute path that `exec` names, as the kernel will run it: relative to `cwd` when it
 * has a slash, else the first match on `PATH` (as execvp does).
 */
export async function resolveExecutable(exec: string, cwd: string, pathVar: string | undefined): Promise<string> {
  if (exec.includes('/')) {
    const file = path.resolve(cwd, exec);
    const verdict = executableAt(file);
    if (verdict === 'ok') return file;
    throw explain(exec, file, verdict);
  }
  let firstProblem: { file: string; verdict: 'directory' | 'not-executable' } | null = null;
  for (const dir of (pathVar ?? '').split(':')) {
    if (dir === '') continue;
    const file = path.resolve(cwd, dir, exec);
    const verdict = executableAt(file);
    if (verdict === 'ok') return file;
    if (verdict !== 'missing' && !firstProblem) firstProblem = { file, verdict };
  }
  if (firstProblem) throw explain(exec, firstProblem.file, firstProblem.verdict);
  throw new ShumaError(
    'SPAWN_FAILED',
    `exec '${exec}' was not found on PATH (${pathVar ?? 'unset'}): give its full path or add its directory to PATH`,
    { cause: 'ENOENT', field: 'exec' },
  );
}

function explain(exec: string, file: string, verdict: 'missing' | 'directory' | 'not-executable'): ShumaError {
  switch (verdict) {
    case 'missing':
      return new ShumaError('SPAWN_FAILED', `exec '${exec}' does not exist (looked at ${file}): check the path`, {
        cause: 'ENOENT',
        field: 'exec',
      });
    case 'directory':
      return new ShumaError('SPAWN_FAILED', `exec '${exec}' is a directory (${file}): name a program inside it`, {
        cause: 'EISDIR',
        field: 'exec',
      });
    case 'not-executable':
      return new ShumaError(
        'SPAWN_FAILED',
        `exec '${exec}' is not executable (${file}): run 'chmod +x ${file}' or start it through its interpreter`,
        { cause: 'EACCES', field: 'exec' },
      );
  }
}
