import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { errorCode, formatBytes, makeDirs, parseInteger, parseKeyed, removeNow, writeControl } from './files.js';
import { baseDir, type Placement } from './paths.js';
import type { CgroupCreation, CgroupRequest, CgroupSupport } from './types.js';
import { CgroupHandle, type CgroupLayout } from './workspace-cgroup.js';

// cgroup v2: one directory; controllers reach it only when every ancestor enables them for its
// children (cgroup.subtree_control), from the nearest one that already does.

/** Enabled always, limits or not: memory.current and pids.current exist only where they are. */
const CONTROLLERS = ['memory', 'pids'] as const;
type Controller = (typeof CONTROLLERS)[number];

function enabledForChildren(dir: string, controller: Controller): boolean {
  try {
    return readFileSync(path.join(dir, 'cgroup.subtree_control'), 'latin1').split(/\s+/).includes(controller);
  } catch {
    // Unreadable: treat as not enabled; the write that follows says what is wrong.
    return false;
  }
}

/** The ancestors of `leaf` that must enable `controller`, outermost first (none above `root`). */
function chainFor(root: string, leaf: string, controller: Controller): string[] {
  const chain: string[] = [];
  for (let dir = path.dirname(leaf); !enabledForChildren(dir, controller); dir = path.dirname(dir)) {
    chain.unshift(dir);
    if (dir === root || !dir.startsWith(`${root}/`)) break;
  }
  return chain;
}

/** Why writing `+controller` into dir's cgroup.subtree_control failed, in words that say what to do. */
function enableFailure(dir: string, controller: Controller, error: unknown): string {
  const code = errorCode(error);
  const file = path.join(dir, 'cgroup.subtree_control');
  switch (code) {
    case 'EBUSY':
      return `writing +${controller} to ${file} failed (EBUSY): ${dir} holds processes (the runtime's own cgroup?), and cgroup v2's "no internal processes" rule lets only a cgroup without processes of its own enable controllers for its children; start the runtime in a leaf of a delegated subtree (e.g. systemd-run --scope -p Delegate=yes) or move its processes into a child cgroup first`;
    case 'ENOENT':
      return `writing +${controller} to ${file} failed (ENOENT): ${controller} is not in ${path.join(dir, 'cgroup.controllers')}, its parent does not delegate it`;
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return `${file} is not writable (${code}): this cgroup subtree is not delegated to the runtime's user`;
    default:
      return `writing +${controller} to ${file} failed (${code})`;
  }
}

/** Enables the controllers down to `leaf`'s parent; gives, per controller that could not be, why. */
function enableControllers(root: string, leaf: string): Map<Controller, string> {
  const plan = new Map<string, Controller[]>();
  for (const controller of CONTROLLERS) {
    for (const dir of chainFor(root, leaf, controller)) plan.set(dir, [...(plan.get(dir) ?? []), controller]);
  }
  const failed = new Map<Controller, string>();
  // Ancestors are prefixes of one another: shorter paths are further up and go first.
  for (const dir of [...plan.keys()].sort((a, b) => a.length - b.length)) {
    const wanted = (plan.get(dir) ?? []).filter((c) => !failed.has(c));
    if (wanted.length === 0) continue;
    const file = path.join(dir, 'cgroup.subtree_control');
    try {
      writeControl(file, wanted.map((c) => `+${c}`).join(' '));
    } catch {
      // One write fails as a whole: retry one by one to tell which controller is refused and why.
      for (const controller of wanted) {
        try {
          writeControl(file, `+${controller}`);
        } catch (error) {
          failed.set(controller, enableFailure(dir, controller, error));
        }
      }
    }
  }
  return failed;
}

function controllerWarnings(failed: Map<Controller, string>, leaf: string, request: CgroupRequest): string[] {
  const warnings: string[] = [];
  const memoryWhy = failed.get('memory');
  if (memoryWhy !== undefined) {
    warnings.push(
      request.memoryBytes !== undefined
        ? `limits.memoryBytes (${formatBytes(request.memoryBytes)}) was not applied as a cgroup limit: the memory controller could not be enabled for ${leaf}: ${memoryWhy}`
        : `cgroup: the memory controller could not be enabled for ${leaf}, so memory is not sampled from the cgroup: ${memoryWhy}`,
    );
  }
  const pidsWhy = failed.get('pids');
  if (pidsWhy !== undefined) {
    warnings.push(
      request.nproc !== undefined
        ? `limits.nproc (${request.nproc}) was not applied as a cgroup limit: the pids controller could not be enabled for ${leaf}: ${pidsWhy}`
        : `cgroup: the pids controller could not be enabled for ${leaf}, so pids are not counted from the cgroup: ${pidsWhy}`,
    );
  }
  return warnings;
}

function writeLimit(file: string, value: string, what: string): string[] {
  try {
    writeControl(file, value);
    return [];
  } catch (error) {
    return [`${what} was not applied as a cgroup limit: writing ${file} failed (${errorCode(error)})`];
  }
}

/**
 * memory.max alone lets a workspace swap past its limit; memory.swap.max 0 makes the limit end in
 * an OOM kill, as v1's memory.memsw.limit_in_bytes does. Absent without swap accounting.
 */
function writeSwapLimit(leaf: string, bytes: number): string[] {
  const file = path.join(leaf, 'memory.swap.max');
  if (!existsSync(file)) return [];
  try {
    writeControl(file, '0');
    return [];
  } catch (error) {
    return [`limits.memoryBytes (${formatBytes(bytes)}) does not bound swap: writing ${file} failed (${errorCode(error)}); the workspace may swap instead of being OOM-killed`];
  }
}

function writeLimits(leaf: string, failed: Map<Controller, string>, request: CgroupRequest): string[] {
  const warnings: string[] = [];
  // Where the controller could not be enabled its files do not exist: the warning above says so once.
  if (request.memoryBytes !== undefined && !failed.has('memory')) {
    const what = `limits.memoryBytes (${formatBytes(request.memoryBytes)})`;
    const limitWarnings = writeLimit(path.join(leaf, 'memory.max'), String(request.memoryBytes), what);
    warnings.push(...limitWarnings);
    if (limitWarnings.length === 0) warnings.push(...writeSwapLimit(leaf, request.memoryBytes));
  }
  if (request.nproc !== undefined && !failed.has('pids')) {
    warnings.push(...writeLimit(path.join(leaf, 'pids.max'), String(request.nproc), `limits.nproc (${request.nproc})`));
  }
  return warnings;
}

function layoutOf(leaf: string, created: string[]): CgroupLayout {
  const killFile = path.join(leaf, 'cgroup.kill');
  return {
    version: 2,
    dirs: [leaf],
    intermediates: created.filter((dir) => dir !== leaf),
    memory: { file: path.join(leaf, 'memory.current'), parse: parseInteger },
    cpu: { file: path.join(leaf, 'cpu.stat'), parse: (text) => parseKeyed(text, 'usage_usec') },
    pids: { file: path.join(leaf, 'pids.current'), parse: parseInteger },
    // `max`: forks refused at this cgroup's pids.max or an ancestor's (hierarchical since Linux 6.x).
    pidsEvents: { file: path.join(leaf, 'pids.events'), parse: (text) => parseKeyed(text, 'max') },
    // memory.events counts OOM kills in this cgroup and below it.
    oomKills: { file: path.join(leaf, 'memory.events'), parse: (text) => parseKeyed(text, 'oom_kill') },
    killFile: existsSync(killFile) ? killFile : null, // cgroup.kill came in Linux 5.14
  };
}

export function createV2(support: CgroupSupport, placement: Placement, request: CgroupRequest): CgroupCreation {
  const root = support.mounts.unified;
  if (root === undefined) throw new Error('cgroup v2 support without a unified mount');
  const parent = makeDirs(baseDir(support, 'unified', placement), placement.parent);
  const made = parent.ok ? makeDirs(parent.dir, placement.name) : parent;
  if (!made.ok) return { cgroup: null, warnings: [`cgroup was asked but ${made.reason}: the workspace runs without a cgroup`] };
  try {
    const failed = enableControllers(root, made.dir);
    const warnings = [...controllerWarnings(failed, made.dir, request), ...writeLimits(made.dir, failed, request)];
    return { cgroup: new CgroupHandle(layoutOf(made.dir, made.created)), warnings };
  } catch (error) {
    removeNow(made.created); // an unexpected failure (a bug, not missing delegation): leave nothing behind
    throw error;
  }
}
