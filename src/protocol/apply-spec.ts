// What `apply` converges to: workspaces, each with the commands and pipelines it should have
// (the shape of a `shuma up` / `shuma apply` spec file). Checked whole before anything is done:
// every field with the API's own validators, and the names apply matches live things by —
// workspace labels, and command and pipeline labels within a workspace — unique.
import path from 'node:path';
import { describe, isPlainObject } from './checks.js';
import { ShumaError, isShumaError } from './errors.js';
import { PIPELINE_FIELDS, validatePipelineSpec, type PipelineSpec } from './pipeline-spec.js';
import type { CommandSpec, WorkspaceSpec } from './specs.js';
import { declaredDependencyProblem } from './supervision-spec.js';
import { WORKSPACE_FIELDS, validateCommandSpec, validateWorkspaceSpec } from './validate-spec.js';
import { checkGroupName } from './validate-supervision.js';

/** A pipeline of a spec file: its workspace is the one it is listed under. */
export type FilePipelineSpec = Omit<PipelineSpec, 'workspace'>;

/** One workspace of an apply spec, as users write it. */
export type ApplyWorkspaceSpec = WorkspaceSpec & { commands?: CommandSpec[]; pipelines?: FilePipelineSpec[] };

/** What `rt.apply()` takes: the content of a spec file. */
export interface ApplySpec {
  workspaces: ApplyWorkspaceSpec[];
}

/** One workspace of a checked apply spec: its own spec apart from what runs in it. */
export interface CheckedWorkspace {
  spec: WorkspaceSpec;
  commands: CommandSpec[];
  pipelines: FilePipelineSpec[];
}

export interface CheckedApplySpec {
  workspaces: CheckedWorkspace[];
}

export const APPLY_TOP_FIELDS = ['workspaces'] as const;
export const APPLY_WORKSPACE_FIELDS = [...WORKSPACE_FIELDS, 'commands', 'pipelines'] as const;
export const APPLY_PIPELINE_FIELDS = PIPELINE_FIELDS.filter((f) => f !== 'workspace');

function fieldError(field: string, problem: string): ShumaError {
  return new ShumaError('INVALID_SPEC', `${field} ${problem}`, { field });
}

function knownFields(at: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw fieldError(at ? `${at}.${key}` : key, `is not a known field; known fields: ${allowed.join(', ')}`);
  }
}

/** Runs a validator of the API and rewrites its field (relative to `base`) as a path in the spec. */
function withBase<T>(base: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (!isShumaError(error) || error.field === undefined) throw error;
    const short = error.field;
    const problem = error.detail.startsWith(`${short} `) ? error.detail.slice(short.length + 1) : error.detail;
    const full = short === 'spec' ? base : short.startsWith(base) ? short : `${base}.${short}`;
    throw fieldError(full, problem);
  }
}

/** The label a command is known by: its own, or its program's name (as run() gives it). */
export function commandLabelOf(spec: CommandSpec): string {
  return spec.label ?? path.basename(spec.exec);
}

function uniqueLabels(at: string, labels: readonly string[], what: string, hint: string): void {
  for (const [i, label] of labels.entries()) {
    if (labels.indexOf(label) !== i) throw fieldError(`${at}[${i}].label`, `${JSON.stringify(label)} is the label of an earlier ${what} too: ${hint}`);
  }
}

function checkWorkspace(raw: unknown, i: number): CheckedWorkspace {
  const at = `workspaces[${i}]`;
  if (!isPlainObject(raw)) throw fieldError(at, `must be a mapping with a label (got ${describe(raw)})`);
  knownFields(at, raw, APPLY_WORKSPACE_FIELDS);
  const { commands = [], pipelines = [], ...rest } = raw;
  const spec = withBase(at, () => validateWorkspaceSpec(rest));
  if (!Array.isArray(commands)) throw fieldError(`${at}.commands`, `must be a list of commands (got ${describe(commands)})`);
  if (!Array.isArray(pipelines)) throw fieldError(`${at}.pipelines`, `must be a list of pipelines (got ${describe(pipelines)})`);
  const cmds = commands.map((c: unknown, j) => withBase(at, () => validateCommandSpec(c, `${at}.commands[${j}]`)));
  cmds.forEach((c, j) => withBase(at, () => checkGroupName(spec.groups, c.group, `${at}.commands[${j}].group`)));
  const labels = cmds.map(commandLabelOf);
  // Apply finds a command again by its label: two alike would be one command to it.
  uniqueLabels(`${at}.commands`, labels, 'command', 'labels are unique within a workspace (give each command a label of its own)');
  const dependencyProblem = declaredDependencyProblem(
    labels,
    cmds.map((c) => c.dependsOn),
  );
  if (dependencyProblem) {
    const { command, dependency, problem } = dependencyProblem;
    throw fieldError(`${at}.commands[${command}].dependsOn[${dependency}].label`, problem);
  }
  const pipes = pipelines.map((p: unknown, k): FilePipelineSpec => {
    const pAt = `${at}.pipelines[${k}]`;
    if (!isPlainObject(p)) throw fieldError(pAt, `must be a mapping with label, nodes and edges (got ${describe(p)})`);
    if ('workspace' in p) throw fieldError(`${pAt}.workspace`, 'is filled in at run time (the enclosing workspace): leave it out');
    knownFields(pAt, p, APPLY_PIPELINE_FIELDS);
    const { workspace: _ws, ...checked } = withBase(pAt, () => validatePipelineSpec({ ...p, workspace: 'file' }));
    return checked;
  });
  uniqueLabels(`${at}.pipelines`, pipes.map((p) => p.label), 'pipeline', 'labels are unique within a workspace');
  return { spec, commands: cmds, pipelines: pipes };
}

/** Checks a whole apply spec (a spec file's content); throws INVALID_SPEC naming the field. */
export function checkApplySpec(data: unknown): CheckedApplySpec {
  if (!isPlainObject(data)) throw fieldError('(file)', `must be a mapping with a 'workspaces' list (got ${describe(data)})`);
  knownFields('', data, APPLY_TOP_FIELDS);
  const list = data.workspaces;
  if (!Array.isArray(list) || list.length === 0) throw fieldError('workspaces', `must be a non-empty list of workspaces (got ${describe(list)})`);
  const workspaces = list.map(checkWorkspace);
  uniqueLabels('workspaces', workspaces.map((w) => w.spec.label), 'workspace', 'labels name workspaces');
  return { workspaces };
}

/** A checked spec back in the shape users write (what crosses the control socket). */
export function applySpecOf(checked: CheckedApplySpec): ApplySpec {
  return { workspaces: checked.workspaces.map((w) => ({ ...w.spec, commands: w.commands, pipelines: w.pipelines })) };
}

export interface ApplyOptions {
  /** Remove what the spec's workspaces hold beyond the spec (commands, pipelines). Workspaces are never pruned. */
  prune?: boolean;
  /** Decide and check everything, change nothing: the actions say what apply would do. */
  dryRun?: boolean;
}

/**
 * One thing apply did (or, dry, would do). `created`, `unchanged`; a command `restarted` (a field
 * of RESTART_FIELDS changed) or `updated` (only dependsOn changed: recorded, no restart); a
 * pipeline `restarted` (its earlier run stopped and forgotten, the new spec run); a workspace
 * `recreated` (its own fields cannot change in place: stopped, made again with all it holds);
 * `pruned` (stopped and forgotten).
 */
export interface ApplyAction {
  kind: 'workspace' | 'command' | 'pipeline';
  /** As `ps` shows it: `web`, `web/api`. */
  name: string;
  action: 'created' | 'unchanged' | 'updated' | 'restarted' | 'recreated' | 'pruned';
  /** The fields that differed, for updated, restarted and recreated. */
  changed?: string[];
  /** Its id after apply (a workspace's, a pipeline's, a command's latest run); none when dry or pruned. */
  id?: string;
}

export interface ApplyReport {
  dryRun: boolean;
  actions: ApplyAction[];
}

/** `command web/api: restarted (argv changed)`: how the CLI prints an action. */
export function actionText(action: ApplyAction): string {
  const why = action.changed && action.changed.length > 0 ? ` (${action.changed.join(', ')} changed)` : '';
  return `${action.kind} ${action.name}: ${action.action}${why}`;
}
