// The spec file of `shuma up`: YAML or JSON (JSON is YAML), checked with the validators the API
// uses; an error names the file, the line and column, the field, and what would be valid.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { describe, isPlainObject } from '../protocol/checks.js';
import { isShumaError } from '../protocol/errors.js';
import { PIPELINE_FIELDS, validatePipelineSpec, type PipelineSpec } from '../protocol/pipeline-spec.js';
import type { CommandSpec, WorkspaceSpec } from '../protocol/specs.js';
import { declaredDependencyProblem } from '../protocol/supervision-spec.js';
import { WORKSPACE_FIELDS, validateCommandSpec, validateWorkspaceSpec } from '../protocol/validate-spec.js';
import { checkGroupName } from '../protocol/validate-supervision.js';
import { locate, parseFieldPath } from './field-path.js';

export type FilePipelineSpec = Omit<PipelineSpec, 'workspace'>;

export interface FileWorkspace {
  spec: WorkspaceSpec;
  commands: CommandSpec[];
  pipelines: FilePipelineSpec[];
}

export interface SpecFile {
  workspaces: FileWorkspace[];
}

export const TOP_FIELDS = ['workspaces'] as const;
export const FILE_WORKSPACE_FIELDS = [...WORKSPACE_FIELDS, 'commands', 'pipelines'] as const;
export const FILE_PIPELINE_FIELDS = PIPELINE_FIELDS.filter((f) => f !== 'workspace');

/** A bad spec file: `message` is `file:line:column: field problem`. */
export class SpecFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly field: string | null,
    readonly problem: string,
  ) {
    super(`${file}:${line}:${column}: ${field ? `${field} ` : ''}${problem}`);
    this.name = 'SpecFileError';
  }
}

/** Thrown by the structural checks below with a full path; mapped to a position afterwards. */
class FieldError extends Error {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field} ${problem}`);
  }
}

function knownFields(at: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new FieldError(at ? `${at}.${key}` : key, `is not a known field; known fields: ${allowed.join(', ')}`);
    }
  }
}

/** Runs a validator of the API and rewrites its field (relative to `base`) as a path in the file. */
function withBase<T>(base: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (!isShumaError(error) || error.field === undefined) throw error;
    const short = error.field;
    const problem = error.detail.startsWith(`${short} `) ? error.detail.slice(short.length + 1) : error.detail;
    const full = short === 'spec' ? base : short.startsWith(base) ? short : `${base}.${short}`;
    throw new FieldError(full, problem);
  }
}

export function checkSpecFile(data: unknown): SpecFile {
  if (!isPlainObject(data)) throw new FieldError('(file)', `must be a mapping with a 'workspaces' list (got ${describe(data)})`);
  knownFields('', data, TOP_FIELDS);
  const list = data.workspaces;
  if (!Array.isArray(list) || list.length === 0) {
    throw new FieldError('workspaces', `must be a non-empty list of workspaces (got ${describe(list)})`);
  }
  return {
    workspaces: list.map((raw: unknown, i): FileWorkspace => {
      const at = `workspaces[${i}]`;
      if (!isPlainObject(raw)) throw new FieldError(at, `must be a mapping with a label (got ${describe(raw)})`);
      knownFields(at, raw, FILE_WORKSPACE_FIELDS);
      const { commands = [], pipelines = [], ...rest } = raw;
      const spec = withBase(at, () => validateWorkspaceSpec(rest));
      if (!Array.isArray(commands)) throw new FieldError(`${at}.commands`, `must be a list of commands (got ${describe(commands)})`);
      if (!Array.isArray(pipelines)) throw new FieldError(`${at}.pipelines`, `must be a list of pipelines (got ${describe(pipelines)})`);
      const cmds = commands.map((c: unknown, j) => withBase(at, () => validateCommandSpec(c, `${at}.commands[${j}]`)));
      cmds.forEach((c, j) => withBase(at, () => checkGroupName(spec.groups, c.group, `${at}.commands[${j}].group`)));
      const dependencyProblem = declaredDependencyProblem(
        cmds.map((c) => c.label ?? path.basename(c.exec)),
        cmds.map((c) => c.dependsOn),
      );
      if (dependencyProblem) {
        const { command, dependency, problem } = dependencyProblem;
        throw new FieldError(`${at}.commands[${command}].dependsOn[${dependency}].label`, problem);
      }
      const pipes = pipelines.map((p: unknown, k): FilePipelineSpec => {
        const pAt = `${at}.pipelines[${k}]`;
        if (!isPlainObject(p)) throw new FieldError(pAt, `must be a mapping with label, nodes and edges (got ${describe(p)})`);
        if ('workspace' in p) throw new FieldError(`${pAt}.workspace`, 'is filled in at run time (the enclosing workspace): leave it out');
        knownFields(pAt, p, FILE_PIPELINE_FIELDS);
        const { workspace: _ws, ...checked } = withBase(pAt, () => validatePipelineSpec({ ...p, workspace: 'file' }));
        return checked;
      });
      return { spec, commands: cmds, pipelines: pipes };
    }),
  };
}

export function parseSpecText(file: string, text: string): SpecFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax) {
    const { line, col } = lines.linePos(syntax.pos[0]);
    throw new SpecFileError(file, line, col, null, `not valid YAML/JSON: ${syntax.message.split('\n')[0]}`);
  }
  try {
    return checkSpecFile(doc.toJS({ maxAliasCount: 100 }));
  } catch (error) {
    const field = error instanceof FieldError ? error.field : isShumaError(error) ? error.field : undefined;
    if (field === undefined) throw error;
    const problem = error instanceof FieldError ? error.problem : (error as { detail: string }).detail;
    const { line, column } = locate(doc, lines, field === '(file)' ? [] : parseFieldPath(field));
    throw new SpecFileError(file, line, column, field, problem);
  }
}

export function loadSpecFile(file: string): SpecFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new SpecFileError(file, 1, 1, null, `cannot be read: ${(error as Error).message}`);
  }
  return parseSpecText(file, text);
}
