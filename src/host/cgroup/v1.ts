import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { errorCode, formatBytes, makeDirs, parseInteger, parseKeyed, removeNow, writeControl } from './files.js';
import { baseDir, type Placement } from './paths.js';
import type { CgroupCreation, CgroupRequest, CgroupSupport } from './types.js';
import { CgroupHandle, type CgroupLayout } from './workspace-cgroup.js';

// cgroup v1: one directory per controller hierarchy (memory, pids, cpuacct), each joined separately.

/** memory and pids carry the limits and must all be made; cpuacct only feeds CPU sampling. */
const LIMIT_HIERARCHIES = ['memory', 'pids'] as const;

type Made = Map<string, { dir: string; created: string[] }>;

/** The parent (runtime-owned, kept for later workspaces), then the workspace's own directories. */
function makeIn(support: CgroupSupport, hierarchy: string, placement: Placement): ReturnType<typeof makeDirs> {
  const parent = makeDirs(baseDir(support, hierarchy, placement), placement.parent);
  return parent.ok ? makeDirs(parent.dir, placement.name) : parent;
}

/** Removes what this call made; says what could not be (nothing, short of a kernel surprise). */
function rollback(made: Made): string {
  const left = removeNow([...made.values()].flatMap((m) => m.created));
  return left.length > 0 ? ` (left behind, could not be removed: ${left.join(', ')})` : '';
}

/** All limit hierarchies or none: a half-joined workspace would escape the limit it lacks. */
function makeHierarchies(support: CgroupSupport, placement: Placement, warnings: string[]): Made | null {
  const made: Made = new Map();
  for (const hierarchy of LIMIT_HIERARCHIES) {
    if (support.mounts[hierarchy] === undefined) continue;
    const result = makeIn(support, hierarchy, placement);
    if (!result.ok) {
      const left = rollback(made);
      warnings.push(`cgroup was asked but ${result.reason}: the workspace runs without a cgroup${left}`);
      return null;
    }
    made.set(hierarchy, result);
  }
  if (support.mounts.cpuacct !== undefined) {
    const result = makeIn(support, 'cpuacct', placement);
    if (result.ok) made.set('cpuacct', result);
    else warnings.push(`cgroup: ${result.reason}: CPU usage is not sampled from the cgroup`);
  }
  return made;
}

function missingControllerWarnings(made: Made, request: CgroupRequest): string[] {
  const warnings: string[] = [];
  if (request.memoryBytes !== undefined && !made.has('memory')) {
    warnings.push(`limits.memoryBytes (${formatBytes(request.memoryBytes)}) was not applied as a cgroup limit: no v1 memory controller is mounted`);
  }
  if (request.nproc !== undefined && !made.has('pids')) {
    warnings.push(`limits.nproc (${request.nproc}) was not applied as a cgroup limit: no v1 pids controller is mounted`);
  }
  return warnings;
}

/** Writes the memory limit, and the same for memory+swap so the limit ends in an OOM kill, not in swapping. */
function writeMemoryLimit(dir: string, bytes: number): string[] {
  const limit = path.join(dir, 'memory.limit_in_bytes');
  try {
    writeControl(limit, String(bytes));
  } catch (error) {
    return [`limits.memoryBytes (${formatBytes(bytes)}) was not applied as a cgroup limit: writing ${limit} failed (${errorCode(error)})`];
  }
  const withSwap = path.join(dir, 'memory.memsw.limit_in_bytes');
  if (!existsSync(withSwap)) return []; // no swap accounting in this kernel: nothing to bound
  try {
    writeControl(withSwap, String(bytes));
  } catch (error) {
    return [`limits.memoryBytes (${formatBytes(bytes)}) does not bound swap: writing ${withSwap} failed (${errorCode(error)}); the workspace may swap instead of being OOM-killed`];
  }
  return [];
}

function writePidsLimit(dir: string, nproc: number): string[] {
  const file = path.join(dir, 'pids.max');
  try {
    writeControl(file, String(nproc));
    return [];
  } catch (error) {
    return [`limits.nproc (${nproc}) was not applied as a cgroup limit: writing ${file} failed (${errorCode(error)})`];
  }
}

/**
 * memory.oom_control has counted kills (`oom_kill N`) since Linux 4.13. Without it there is no
 * count: memory.failcnt counts how often usage hit the limit (reclaim included), not kills.
 */
function oomCountWarning(memoryDir: string): string[] {
  const file = path.join(memoryDir, 'memory.oom_control');
  try {
    if (parseKeyed(readFileSync(file, 'latin1'), 'oom_kill') !== null) return [];
    return [`cgroup: ${file} has no oom_kill field (Linux < 4.13): kernel OOM kills in this workspace cannot be counted (memory.failcnt counts hits of the limit, not kills)`];
  } catch (error) {
    return [`cgroup: ${file} could not be read (${errorCode(error)}): kernel OOM kills in this workspace cannot be counted`];
  }
}

function layoutOf(made: Made): CgroupLayout {
  const memory = made.get('memory')?.dir;
  const pids = made.get('pids')?.dir;
  const cpuacct = made.get('cpuacct')?.dir;
  return {
    version: 1,
    dirs: [...made.values()].map((m) => m.dir),
    intermediates: [...made.values()].flatMap((m) => m.created.filter((dir) => dir !== m.dir)),
    memory: memory ? { file: path.join(memory, 'memory.usage_in_bytes'), parse: parseInteger } : null,
    // cpuacct.usage is in nanoseconds.
    cpu: cpuacct ? { file: path.join(cpuacct, 'cpuacct.usage'), parse: (text) => nsToUsec(parseInteger(text)) } : null,
    pids: pids ? { file: path.join(pids, 'pids.current'), parse: parseInteger } : null,
    pidsEvents: pids ? { file: path.join(pids, 'pids.events'), parse: (text) => parseKeyed(text, 'max') } : null,
    oomKills: memory ? { file: path.join(memory, 'memory.oom_control'), parse: (text) => parseKeyed(text, 'oom_kill') } : null,
    killFile: null,
  };
}

function nsToUsec(ns: number | null): number | null {
  return ns === null ? null : Math.floor(ns / 1000);
}

export function createV1(support: CgroupSupport, placement: Placement, request: CgroupRequest): CgroupCreation {
  const warnings: string[] = [];
  const made = makeHierarchies(support, placement, warnings);
  if (!made) return { cgroup: null, warnings };
  try {
    warnings.push(...missingControllerWarnings(made, request));
    const memory = made.get('memory');
    const pids = made.get('pids');
    if (memory && request.memoryBytes !== undefined) warnings.push(...writeMemoryLimit(memory.dir, request.memoryBytes));
    if (pids && request.nproc !== undefined) warnings.push(...writePidsLimit(pids.dir, request.nproc));
    if (memory) warnings.push(...oomCountWarning(memory.dir));
    return { cgroup: new CgroupHandle(layoutOf(made)), warnings };
  } catch (error) {
    rollback(made); // an unexpected failure (a bug, not missing delegation): leave nothing behind
    throw error;
  }
}
