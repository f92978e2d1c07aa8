import path from 'node:path';
import { ShumaError } from '../../protocol/errors.js';
import type { CommandSpec } from '../../protocol/specs.js';
import type { LaunchPlan, WorkspaceEntry } from '../registry/registry.js';
import { checkCwd, resolveExecutable } from './spawn-check.js';

// How a command spec becomes something to start: where it runs, what program, which environment.

/** A util-linux helper of the child_process spawner (prlimit, setpriv); null when missing. */
export async function findUtility(name: 'prlimit' | 'setpriv'): Promise<string | null> {
  try {
    return await resolveExecutable(name, '/', process.env.PATH ?? '/usr/bin:/bin');
  } catch {
    return null; // the warnings say what cannot be done without it
  }
}

/** A command as it will start in `ws`: cwd checked, program found, environment merged. */
export async function launchPlan(ws: Pick<WorkspaceEntry, 'cwd' | 'env'>, spec: CommandSpec): Promise<LaunchPlan> {
  const cwd = await checkCwd(spec.cwd === undefined ? ws.cwd : path.resolve(ws.cwd, spec.cwd), 'cwd');
  const env = envOf(ws, spec);
  const file = await resolveExecutable(spec.exec, cwd, env.PATH);
  return { label: spec.label ?? path.basename(spec.exec), spec, file, cwd, env };
}

/** A plan whose program could not be found now: its spawn will fail and say why. */
export function unresolvedPlan(ws: WorkspaceEntry, spec: CommandSpec): LaunchPlan {
  const cwd = spec.cwd === undefined ? ws.cwd : path.resolve(ws.cwd, spec.cwd);
  return { label: spec.label ?? path.basename(spec.exec), spec, file: path.resolve(cwd, spec.exec), cwd, env: envOf(ws, spec) };
}

/**
 * The workspace's own environment object when the spec adds nothing: one object for every such
 * command, so the spawner makes its `K=V` strings once (native-spawner.ts), not at every run.
 * Nothing changes an environment in place (readonly everywhere).
 */
function envOf(ws: Pick<WorkspaceEntry, 'env'>, spec: CommandSpec): Readonly<Record<string, string>> {
  return spec.env === undefined || Object.keys(spec.env).length === 0 ? ws.env : { ...ws.env, ...spec.env };
}

/** A private copy of a user's spec: later changes to their object must not reach us. */
export function structuredCloneSpec<T>(spec: T): T {
  if (typeof spec !== 'object' || spec === null) return spec;
  try {
    return structuredClone(spec);
  } catch {
    throw new ShumaError('INVALID_SPEC', 'spec must be plain data (strings, numbers, booleans, arrays, objects): it held a function or a class instance');
  }
}
