import {
  checkCount,
  checkDuration,
  checkEnv,
  checkObject,
  checkText,
  describe,
  fail,
  type Path,
} from './checks.js';
import {
  RESTART_DEFAULTS,
  type CommandSpec,
  type ResolvedRestartPolicy,
  type RestartPolicy,
  type WorkspaceSpec,
} from './specs.js';
import { validateDependsOn, validateGroups, validateProbe, validateSupervision } from './validate-supervision.js';
import { validateNode, validatePlacement } from './placement-spec.js';

export const RESTART_FIELDS = ['onFailure', 'always', 'backoffMs', 'maxBackoffMs', 'maxRestarts', 'resetAfterMs'] as const;

export function validateRestartPolicy(value: unknown, field: Path = 'restart'): RestartPolicy {
  const o = checkObject(value, field, RESTART_FIELDS);
  if (typeof o.onFailure !== 'boolean') fail(`${field}.onFailure`, `must be true or false (got ${describe(o.onFailure)})`);
  if (o.always !== undefined && typeof o.always !== 'boolean') fail(`${field}.always`, `must be true or false (got ${describe(o.always)})`);
  if (o.backoffMs !== undefined) checkDuration(o.backoffMs, `${field}.backoffMs`);
  if (o.maxBackoffMs !== undefined) checkDuration(o.maxBackoffMs, `${field}.maxBackoffMs`);
  if (o.maxRestarts !== undefined) checkCount(o.maxRestarts, `${field}.maxRestarts`);
  if (o.resetAfterMs !== undefined) checkDuration(o.resetAfterMs, `${field}.resetAfterMs`);
  const resolved = resolveRestartPolicy(o as unknown as RestartPolicy);
  if (resolved.maxBackoffMs < resolved.backoffMs) {
    fail(
      `${field}.maxBackoffMs`,
      `(${resolved.maxBackoffMs}) must be >= backoffMs (${resolved.backoffMs}): raise maxBackoffMs or lower backoffMs`,
    );
  }
  return o as unknown as RestartPolicy;
}

export function resolveRestartPolicy(policy: RestartPolicy | undefined): ResolvedRestartPolicy {
  return {
    onFailure: policy?.onFailure ?? RESTART_DEFAULTS.onFailure,
    always: policy?.always ?? RESTART_DEFAULTS.always,
    backoffMs: policy?.backoffMs ?? RESTART_DEFAULTS.backoffMs,
    maxBackoffMs: policy?.maxBackoffMs ?? Math.max(RESTART_DEFAULTS.maxBackoffMs, policy?.backoffMs ?? 0),
    maxRestarts: policy?.maxRestarts ?? RESTART_DEFAULTS.maxRestarts,
    resetAfterMs: policy?.resetAfterMs ?? RESTART_DEFAULTS.resetAfterMs,
  };
}

export const COMMAND_FIELDS = ['exec', 'argv', 'env', 'cwd', 'label', 'restart', 'ready', 'dependsOn', 'node', 'timestamps', 'group'] as const;

/** Checks a command spec's shape; `prefix` names it in messages (e.g. `nodes[1]`). */
export function validateCommandSpec(value: unknown, prefix = ''): CommandSpec {
  const at = (f: string) => (prefix ? `${prefix}.${f}` : f);
  const o = checkObject(value, prefix || 'spec', COMMAND_FIELDS);
  checkText(o.exec, at('exec'));
  if (o.argv !== undefined) {
    if (!Array.isArray(o.argv)) fail(at('argv'), `must be an array of strings (got ${describe(o.argv)})`);
    o.argv.forEach((arg, i) => checkText(arg, `${at('argv')}[${i}]`, { allowEmpty: true }));
  }
  if (o.env !== undefined) checkEnv(o.env, at('env'));
  if (o.cwd !== undefined) checkText(o.cwd, at('cwd'));
  if (o.label !== undefined) checkText(o.label, at('label'));
  if (o.restart !== undefined) validateRestartPolicy(o.restart, at('restart'));
  if (o.ready !== undefined) validateProbe(o.ready, at('ready'));
  if (o.dependsOn !== undefined) validateDependsOn(o.dependsOn, at('dependsOn'));
  if (o.node !== undefined) validateNode(o.node, at('node'));
  if (o.group !== undefined) checkText(o.group, at('group'));
  if (o.timestamps !== undefined && typeof o.timestamps !== 'boolean') fail(at('timestamps'), `must be true or false (got ${describe(o.timestamps)})`);
  return o as unknown as CommandSpec;
}

export const WORKSPACE_FIELDS = ['label', 'ttlMs', 'limits', 'quota', 'cgroup', 'cwd', 'env', 'flowDir', 'supervision', 'groups', 'placement'] as const;
export const LIMIT_FIELDS = ['memoryBytes', 'nproc', 'nofile', 'cpuSeconds'] as const;
export const QUOTA_ACTIONS = ['none', 'log', 'kill'];

export function validateWorkspaceSpec(value: unknown): WorkspaceSpec {
  const o = checkObject(value, 'spec', WORKSPACE_FIELDS);
  checkText(o.label, 'label');
  if (o.ttlMs !== undefined) checkDuration(o.ttlMs, 'ttlMs', { allowZero: false });
  if (o.limits !== undefined) {
    const limits = checkObject(o.limits, 'limits', LIMIT_FIELDS);
    for (const key of LIMIT_FIELDS) {
      if (limits[key] !== undefined) {
        checkCount(limits[key], `limits.${key}`);
        if (limits[key] === 0) fail(`limits.${key}`, 'must be > 0: leave it out for no limit');
      }
    }
  }
  if (o.quota !== undefined) {
    const quota = checkObject(o.quota, 'quota', ['memory', 'nproc']);
    for (const key of ['memory', 'nproc'] as const) {
      const action = quota[key];
      if (action !== undefined && (typeof action !== 'string' || !QUOTA_ACTIONS.includes(action))) {
        fail(`quota.${key}`, `must be one of 'none', 'log', 'kill' (got ${describe(action)})`);
      }
    }
  }
  if (o.cgroup !== undefined && typeof o.cgroup !== 'boolean') checkText(o.cgroup, 'cgroup');
  if (o.cwd !== undefined) checkText(o.cwd, 'cwd');
  if (o.env !== undefined) checkEnv(o.env, 'env');
  if (o.flowDir !== undefined) checkText(o.flowDir, 'flowDir');
  if (o.supervision !== undefined) validateSupervision(o.supervision);
  if (o.groups !== undefined) validateGroups(o.groups);
  if (o.placement !== undefined) validatePlacement(o.placement);
  return o as unknown as WorkspaceSpec;
}

export function validateGraceMs(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  return checkDuration(value, 'graceMs');
}
