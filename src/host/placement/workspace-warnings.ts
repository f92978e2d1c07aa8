import type { WorkspaceSpec } from '../../protocol/specs.js';
import { flowDirWarnings } from '../flows/flow-dir.js';

export interface LimitFacts {
  /** The spawner sets rlimits itself, or util-linux's prlimit was found to set them. */
  appliesRlimits: boolean;
  /** RLIMIT_NPROC does not bind root. */
  isRoot: boolean;
  /** The workspace got a cgroup of its own: memory and nproc are kernel limits there. */
  cgroupMade: boolean;
}

/** What a spec asks that cannot be applied here, and why: said plainly, never silently dropped. */
export function unsupportedWarnings(spec: WorkspaceSpec, facts: LimitFacts): string[] {
  const warnings: string[] = [];
  const limits = spec.limits ?? {};
  if (!facts.appliesRlimits) {
    for (const [key, value] of Object.entries(limits)) {
      if (value !== undefined) {
        warnings.push(`limits.${key} (${value}) was not applied as an rlimit: prlimit (util-linux) was not found on PATH; install util-linux`);
      }
    }
  }
  if (limits.nproc !== undefined && facts.isRoot && !facts.cgroupMade) {
    warnings.push(
      `limits.nproc (${limits.nproc}) does not bind: the kernel does not apply RLIMIT_NPROC to root; ask for cgroup: true to have pids.max enforce it`,
    );
  }
  const limitOf = { memory: limits.memoryBytes, nproc: limits.nproc };
  const limitName = { memory: 'limits.memoryBytes', nproc: 'limits.nproc' };
  for (const resource of ['memory', 'nproc'] as const) {
    const action = spec.quota?.[resource];
    if (action !== undefined && action !== 'none' && limitOf[resource] === undefined) {
      warnings.push(`quota.${resource} ('${action}') has nothing to compare with: set ${limitName[resource]}`);
    }
  }
  warnings.push(...flowDirWarnings(spec));
  return warnings;
}
