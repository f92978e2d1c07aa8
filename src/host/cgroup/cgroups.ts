import { ShumaError } from '../../protocol/errors.js';
import path from 'node:path';
import { childCgroups, formatBytes, removeCgroupDir } from './files.js';
import { parentDir, placementOf } from './paths.js';
import type { CgroupCreation, CgroupRequest, CgroupSupport } from './types.js';
import { createV1 } from './v1.js';
import { createV2 } from './v2.js';

// A workspace's cgroup (v1 or v2): where it goes, the kernel limits it carries, how it is
// sampled, killed and removed. Detection runs once at start; each workspace then asks for one.
//
//   <mount>/<runtime's own cgroup>/shuma-<runtimeId>/<workspaceId>     cgroup: true
//   <mount>/<path>                                                     cgroup: '<path>' (parent '')

export type { CgroupCreation, CgroupRequest, CgroupSample, CgroupSupport, CgroupVersion, WorkspaceCgroup } from './types.js';
export { detectCgroups } from './detect.js';

function checkLimit(value: number | undefined, field: string): void {
  if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
    throw new ShumaError('INVALID_SPEC', `${field} must be a positive integer, got ${value}`, { field });
  }
}

/** Why the workspace gets no cgroup, with the limits that are then not kernel-enforced. */
function unsupportedWarning(reason: string, request: CgroupRequest): string {
  const unenforced = [
    ...(request.memoryBytes !== undefined ? [`limits.memoryBytes (${formatBytes(request.memoryBytes)})`] : []),
    ...(request.nproc !== undefined ? [`limits.nproc (${request.nproc})`] : []),
  ];
  const consequence = unenforced.length > 0 ? `; ${unenforced.join(' and ')} not enforced by the kernel` : '';
  return `cgroup was asked but ${reason}: the workspace runs without a cgroup${consequence}`;
}

/**
 * Creates a workspace's cgroup under `parent` (made if missing) named `name`, and writes its
 * limits. A bad name or limit rejects (a spec error); missing delegation never does: what could not
 * be applied comes back in `warnings`, with `cgroup` null when none could be made, and nothing
 * half-made left behind.
 */
export async function createWorkspaceCgroup(support: CgroupSupport, request: CgroupRequest): Promise<CgroupCreation> {
  const placement = placementOf(request);
  checkLimit(request.memoryBytes, 'limits.memoryBytes');
  checkLimit(request.nproc, 'limits.nproc');
  if (support.version === null) {
    return { cgroup: null, warnings: [unsupportedWarning(support.reason ?? 'no cgroup hierarchy is usable', request)] };
  }
  return support.version === 1 ? createV1(support, placement, request) : createV2(support, placement, request);
}

/** Removes the runtime-owned parent once empty (at shutdown); rejects if workspaces are still in it. */
export async function removeCgroupParent(support: CgroupSupport, parent: string): Promise<void> {
  if (support.version === null) return;
  const failures: string[] = [];
  for (const hierarchy of Object.keys(support.mounts)) {
    const dir = parentDir(support, hierarchy, parent);
    if (dir === null) continue; // no parent: workspaces were placed at the root, nothing of ours to remove
    // A workspace cgroup still in it will not leave by itself: say so now rather than retry EBUSY.
    const left = childCgroups(dir).map((child) => path.relative(dir, child));
    if (left.length > 0) {
      failures.push(`could not remove cgroup ${dir}: workspace cgroups are still in it (${left.join(', ')})`);
      continue;
    }
    try {
      await removeCgroupDir(dir);
    } catch (error) {
      failures.push(error instanceof Error ? error.message : String(error));
    }
  }
  if (failures.length > 0) throw new Error(failures.join('; '));
}
