import { checkCount, checkDuration, checkObject, checkText, describe, fail, isPlainObject, type Path } from './checks.js';
import {
  GROUP_NAME,
  DEPENDENCY_CONDITIONS,
  DEPENDENCY_FIELDS,
  INTENSITY_FIELDS,
  PROBE_FIELDS,
  PROBE_KINDS,
  STRATEGIES,
  SUPERVISION_FIELDS,
  type Dependency,
  type DependencyCondition,
  type ReadinessProbe,
  type SupervisionSpec,
  type SupervisionStrategy,
} from './supervision-spec.js';

// The checks of what a spec says about readiness, dependencies and group supervision.

export function validateProbe(value: unknown, field: Path): ReadinessProbe {
  const o = checkObject(value, field, PROBE_FIELDS);
  const kinds = PROBE_KINDS.filter((kind) => o[kind] !== undefined);
  if (kinds.length !== 1) {
    fail(field, `must name exactly one of ${PROBE_KINDS.join(', ')} (got ${kinds.length === 0 ? 'none' : kinds.join(' and ')})`);
  }
  const kind = kinds[0]!;
  switch (kind) {
    case 'exec':
      if (!Array.isArray(o.exec) || o.exec.length === 0) fail(`${field}.exec`, `must be a non-empty array of strings: the program, then its arguments (got ${describe(o.exec)})`);
      o.exec.forEach((arg, i) => checkText(arg, `${field}.exec[${i}]`, { allowEmpty: i > 0 }));
      break;
    case 'tcp':
      if (typeof o.tcp !== 'number' || !Number.isInteger(o.tcp) || o.tcp < 1 || o.tcp > 65535) {
        fail(`${field}.tcp`, `must be a port number 1..65535 on 127.0.0.1 (got ${describe(o.tcp)})`);
      }
      break;
    case 'http': {
      checkText(o.http, `${field}.http`);
      let url: URL | null = null;
      try {
        url = new URL(o.http as string);
      } catch {
        url = null;
      }
      if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
        fail(`${field}.http`, `must be an http:// or https:// URL (got ${describe(o.http)})`);
      }
      break;
    }
    case 'line':
      checkText(o.line, `${field}.line`);
      try {
        new RegExp(o.line as string);
      } catch (error) {
        fail(`${field}.line`, `is not a valid regular expression: ${(error as Error).message}`);
      }
      break;
    case 'notify':
      if (o.notify !== true) fail(`${field}.notify`, `must be true: leave it out for no notification (got ${describe(o.notify)})`);
      break;
  }
  if (o.intervalMs !== undefined) checkDuration(o.intervalMs, `${field}.intervalMs`, { allowZero: false });
  if (o.timeoutMs !== undefined) checkDuration(o.timeoutMs, `${field}.timeoutMs`, { allowZero: false });
  if (o.startTimeoutMs !== undefined) checkDuration(o.startTimeoutMs, `${field}.startTimeoutMs`);
  if (o.failureThreshold !== undefined) {
    checkCount(o.failureThreshold, `${field}.failureThreshold`);
    if (o.failureThreshold === 0) fail(`${field}.failureThreshold`, 'must be >= 1: the failed probes in a row that make a ready command unhealthy');
  }
  return o as ReadinessProbe;
}

export function validateDependsOn(value: unknown, field: Path): Dependency[] {
  if (!Array.isArray(value)) fail(field, `must be an array of { label, condition } (got ${describe(value)})`);
  const seen = new Set<string>();
  value.forEach((dep, i) => {
    const o = checkObject(dep, `${field}[${i}]`, DEPENDENCY_FIELDS);
    checkText(o.label, `${field}[${i}].label`);
    if (seen.has(o.label as string)) fail(`${field}[${i}].label`, `names '${o.label as string}' twice: one dependency per command`);
    seen.add(o.label as string);
    if (o.condition !== undefined && !DEPENDENCY_CONDITIONS.includes(o.condition as DependencyCondition)) {
      fail(`${field}[${i}].condition`, `must be one of ${DEPENDENCY_CONDITIONS.map((c) => `'${c}'`).join(', ')} (got ${describe(o.condition)})`);
    }
  });
  return value as Dependency[];
}

export function validateSupervision(value: unknown, field: Path = 'supervision'): SupervisionSpec {
  const o = checkObject(value, field, SUPERVISION_FIELDS);
  if (!STRATEGIES.includes(o.strategy as SupervisionStrategy)) {
    fail(`${field}.strategy`, `must be one of ${STRATEGIES.map((s) => `'${s}'`).join(', ')} (got ${describe(o.strategy)})`);
  }
  if (o.intensity !== undefined) {
    const intensity = checkObject(o.intensity, `${field}.intensity`, INTENSITY_FIELDS);
    checkCount(intensity.maxRestarts, `${field}.intensity.maxRestarts`);
    checkDuration(intensity.withinMs, `${field}.intensity.withinMs`, { allowZero: false });
  }
  if (o.escalate !== undefined && typeof o.escalate !== 'boolean') fail(`${field}.escalate`, `must be true or false (got ${describe(o.escalate)})`);
  if (o.escalate === true && o.intensity === undefined) {
    fail(`${field}.escalate`, 'needs an intensity: without one the group never gives up, so there is nothing to escalate');
  }
  return o as unknown as SupervisionSpec;
}


/** WorkspaceSpec.groups: named groups, each with a supervision of its own. */
export function validateGroups(value: unknown, field: Path = 'groups'): Record<string, SupervisionSpec> {
  if (!isPlainObject(value)) fail(field, `must be an object of named groups, each { strategy, intensity?, escalate? } (got ${describe(value)})`);
  const o = value;
  for (const [name, spec] of Object.entries(o)) {
    if (!GROUP_NAME.test(name)) {
      fail(`${field}`, `has a group named ${describe(name)}: a group name is 1 to 63 of letters, digits, '.', '_', '-', starting with a letter or digit`);
    }
    validateSupervision(spec, `${field}.${name}`);
  }
  return o as Record<string, SupervisionSpec>;
}

/** A command's `group` must name one of its workspace's groups. */
export function checkGroupName(groups: Record<string, SupervisionSpec> | undefined, group: string | undefined, field: Path): void {
  if (group === undefined || (groups !== undefined && Object.hasOwn(groups, group))) return;
  const known = Object.keys(groups ?? {});
  fail(
    field,
    `names no group of this workspace: '${group}' (${known.length > 0 ? `groups: ${known.join(', ')}` : 'it declares no groups: add it to the workspace spec\'s groups, or leave group out'})`,
  );
}
