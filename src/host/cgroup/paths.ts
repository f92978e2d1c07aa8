import path from 'node:path';
import { ShumaError } from '../../protocol/errors.js';
import type { CgroupRequest, CgroupSupport } from './types.js';

// Where a workspace's cgroup goes in each hierarchy, and which names are allowed.

/**
 * The segments of a relative cgroup path. Absolute paths and `..` are refused: a spec must not
 * be able to reach (and later rmdir) cgroups outside the hierarchy it is placed in.
 */
export function cgroupSegments(value: string, field: 'cgroup' | 'parent'): string[] {
  const fail = (why: string): never => {
    const what = field === 'cgroup' ? 'cgroup path' : 'cgroup parent';
    throw new ShumaError(field === 'cgroup' ? 'INVALID_SPEC' : 'INVALID_ARGUMENT', `${what} ${JSON.stringify(value)} ${why}`, { field });
  };
  if (value.startsWith('/')) fail("must be relative (e.g. 'shuma/build'): it is placed below each cgroup hierarchy's root");
  if (value === '') return [];
  const segments = value.replace(/\/+$/, '').split('/');
  for (const segment of segments) {
    if (segment === '..') fail("must not contain '..': it would leave the hierarchy it is placed in");
    if (segment === '' || segment === '.') fail("must not contain empty or '.' segments (write 'a/b')");
    if (/[\0\n]/.test(segment)) fail('must not contain NUL or newline characters');
  }
  return segments;
}

/** The parsed request: the parent's segments and the name's, both validated. */
export interface Placement {
  parent: string[];
  name: string[];
}

export function placementOf(request: CgroupRequest): Placement {
  const name = cgroupSegments(request.name, 'cgroup');
  if (name.length === 0) throw new ShumaError('INVALID_SPEC', 'cgroup name must not be empty', { field: 'cgroup' });
  return { parent: cgroupSegments(request.parent, 'parent'), name };
}

/**
 * Where the parent is made in one hierarchy: under the runtime's own cgroup (what a delegated
 * subtree allows), or at the hierarchy's root when there is no parent (a path the user gave).
 */
export function baseDir(support: CgroupSupport, hierarchy: string, placement: Placement): string {
  const mount = support.mounts[hierarchy];
  if (mount === undefined) throw new Error(`no mount for cgroup hierarchy ${hierarchy}`);
  if (placement.parent.length === 0) return mount;
  return path.join(mount, support.own[hierarchy] ?? '/');
}

export function parentDir(support: CgroupSupport, hierarchy: string, parent: string): string | null {
  const segments = cgroupSegments(parent, 'parent');
  if (segments.length === 0) return null;
  return path.join(baseDir(support, hierarchy, { parent: segments, name: [] }), ...segments);
}
