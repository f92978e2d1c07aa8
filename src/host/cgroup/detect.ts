import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { errorCode } from './files.js';
import type { CgroupSupport } from './types.js';

// Which cgroup version this process can use, read from /proc/self/mountinfo and /proc/self/cgroup.

/** The v1 controllers shuma uses: limits (memory, pids) and CPU accounting (cpuacct). */
const V1_REQUIRED = ['memory', 'pids'] as const;
const V1_OPTIONAL = ['cpuacct'] as const;

const DELEGATION_HINT = 'cgroups need root, or a cgroup subtree delegated to this user (e.g. systemd Delegate=yes)';

export interface MountEntry {
  /** The path inside the hierarchy that is mounted (not '/' for a bind mount of a subtree). */
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** mountinfo escapes space, tab, newline and backslash as octal (`\040`). */
function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** `36 25 0:32 / /sys/fs/cgroup/memory rw,relatime shared:1 - cgroup cgroup rw,memory` → one entry. */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6); // optional fields (shared:N ...) end at '-'
    const [root, mountPoint] = [fields[3], fields[4]];
    const [fsType, , superOptions] = fields.slice(separator + 1);
    if (separator < 0 || !root || !mountPoint || !fsType) continue;
    entries.push({
      root: unescapeMountPath(root),
      mountPoint: unescapeMountPath(mountPoint),
      fsType,
      superOptions: (superOptions ?? '').split(','),
    });
  }
  return entries;
}

export interface SelfCgroup {
  /** v1: path per controller (`4:memory:/a/b` → memory → /a/b). */
  v1: Map<string, string>;
  /** v2: the `0::/path` line, null when absent. */
  unified: string | null;
}

export function parseSelfCgroup(text: string): SelfCgroup {
  const self: SelfCgroup = { v1: new Map(), unified: null };
  for (const line of text.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const cgroupPath = line.slice(second + 1);
    if (line.slice(0, first) === '0' && controllers === '') self.unified = cgroupPath;
    else for (const controller of controllers.split(',')) self.v1.set(controller, cgroupPath);
  }
  return self;
}

/**
 * The process's cgroup relative to a mount of its hierarchy. A mount of a subtree (root
 * `/docker/abc`) shows only what is below that root; a cgroup outside it (after a cgroup
 * namespace change) is not reachable there, so the mount's own root is the best place left.
 */
export function ownRelativeTo(cgroupPath: string, mountRoot: string): string {
  if (mountRoot === '/') return cgroupPath;
  if (cgroupPath === mountRoot) return '/';
  if (cgroupPath.startsWith(`${mountRoot}/`)) return cgroupPath.slice(mountRoot.length);
  return '/';
}

/** The directory of a cgroup in a mount (`own` is '/' for the mount's root: no trailing slash then). */
function cgroupDir(mountPoint: string, own: string): string {
  return own === '/' ? mountPoint : path.join(mountPoint, own);
}

/** Why a directory cannot take new cgroups, or null when it can. */
function unwritableReason(dir: string): string | null {
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is not a directory`;
    accessSync(dir, constants.W_OK);
    return null;
  } catch (error) {
    const code = errorCode(error);
    return code === 'ENOENT' ? `${dir} does not exist (ENOENT)` : `${dir} is not writable (${code})`;
  }
}

function unusable(reason: string): CgroupSupport {
  return { version: null, reason, mounts: {}, own: {} };
}

/** The controllers v2 offers at `dir` (its cgroup.controllers), empty when unreadable. */
function v2Controllers(dir: string): Set<string> {
  try {
    return new Set(readFileSync(path.join(dir, 'cgroup.controllers'), 'latin1').split(/\s+/).filter(Boolean));
  } catch {
    // Unreadable (missing, not a cgroup2 directory): it offers nothing usable, so detection goes
    // on to v1 or to a plain v2 hierarchy, whose own checks then say what is wrong.
    return new Set();
  }
}

function detectV2(mount: MountEntry, self: SelfCgroup): CgroupSupport {
  const own = ownRelativeTo(self.unified ?? '/', mount.root);
  const why = unwritableReason(cgroupDir(mount.mountPoint, own));
  if (why) return unusable(`${why}: ${DELEGATION_HINT}`);
  return { version: 2, reason: null, mounts: { unified: mount.mountPoint }, own: { unified: own } };
}

function detectV1(v1Mounts: Map<string, MountEntry>, self: SelfCgroup): CgroupSupport {
  const support: CgroupSupport = { version: 1, reason: null, mounts: {}, own: {} };
  for (const controller of [...V1_REQUIRED, ...V1_OPTIONAL]) {
    const mount = v1Mounts.get(controller);
    if (!mount) continue;
    const own = ownRelativeTo(self.v1.get(controller) ?? '/', mount.root);
    const why = unwritableReason(cgroupDir(mount.mountPoint, own));
    const required = (V1_REQUIRED as readonly string[]).includes(controller);
    if (why && required) return unusable(`${why}: ${DELEGATION_HINT}`);
    if (why) continue; // cpuacct only feeds CPU sampling: without it, stats fall back to /proc
    support.mounts[controller] = mount.mountPoint;
    support.own[controller] = own;
  }
  return support;
}

/** Reads /proc/self/mountinfo and /proc/self/cgroup (paths injectable for tests) and checks writability. */
export function detectCgroups(options: { mountinfo?: string; selfCgroup?: string } = {}): CgroupSupport {
  const mountinfoFile = options.mountinfo ?? '/proc/self/mountinfo';
  const selfFile = options.selfCgroup ?? '/proc/self/cgroup';
  let mounts: MountEntry[];
  let self: SelfCgroup;
  try {
    mounts = parseMountinfo(readFileSync(mountinfoFile, 'utf8'));
    self = parseSelfCgroup(readFileSync(selfFile, 'utf8'));
  } catch (error) {
    return unusable(`${mountinfoFile} or ${selfFile} could not be read (${errorCode(error)})`);
  }
  const unified = mounts.find((m) => m.fsType === 'cgroup2');
  const v1Mounts = new Map<string, MountEntry>();
  for (const mount of mounts.filter((m) => m.fsType === 'cgroup')) {
    for (const option of mount.superOptions) if (!v1Mounts.has(option)) v1Mounts.set(option, mount);
  }
  // A controller is bound to one hierarchy at a time: on a hybrid system the v2 mount exists but
  // memory and pids live in v1 (this machine), so v2 wins only where it holds them.
  if (unified) {
    const controllers = v2Controllers(cgroupDir(unified.mountPoint, ownRelativeTo(self.unified ?? '/', unified.root)));
    if (controllers.has('memory') || controllers.has('pids')) return detectV2(unified, self);
  }
  if (V1_REQUIRED.some((c) => v1Mounts.has(c))) return detectV1(v1Mounts, self);
  // A v2 hierarchy without resource controllers still groups and kills (cgroup.kill); limits then warn.
  if (unified) return detectV2(unified, self);
  return unusable(`no cgroup hierarchy is mounted (${mountinfoFile} lists neither cgroup2 nor a v1 memory or pids controller)`);
}
