import type { WorkspaceSpec } from '../protocol/specs.js';

/** What a spec asks that this version cannot apply yet: said plainly, never silently dropped. */
export function unsupportedWarnings(spec: WorkspaceSpec): string[] {
  const warnings: string[] = [];
  for (const [key, value] of Object.entries(spec.limits ?? {})) {
    if (value !== undefined) warnings.push(`limits.${key} (${value}) was not applied: resource limits are not implemented yet`);
  }
  for (const [key, value] of Object.entries(spec.quota ?? {})) {
    if (value !== undefined && value !== 'none') {
      warnings.push(`quota.${key} ('${value}') was not applied: quota enforcement is not implemented yet`);
    }
  }
  if (spec.cgroup !== undefined && spec.cgroup !== false) {
    warnings.push(`cgroup (${JSON.stringify(spec.cgroup)}) was not created: cgroups are not implemented yet`);
  }
  if (spec.flowDir !== undefined) warnings.push('flowDir was not used: flow channels are not implemented yet');
  return warnings;
}
