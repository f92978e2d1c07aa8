// The spec file of `shuma up`: YAML or JSON (JSON is YAML), checked with the validators the API
// uses; an error names the file, the line and column, the field, and what would be valid.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { checkApplySpec, type CheckedApplySpec, type CheckedWorkspace } from '../protocol/apply-spec.js';
import { isShumaError } from '../protocol/errors.js';
import { locate, parseFieldPath } from './field-path.js';

export { APPLY_PIPELINE_FIELDS as FILE_PIPELINE_FIELDS, APPLY_TOP_FIELDS as TOP_FIELDS, APPLY_WORKSPACE_FIELDS as FILE_WORKSPACE_FIELDS } from '../protocol/apply-spec.js';
export type { FilePipelineSpec } from '../protocol/apply-spec.js';

export type FileWorkspace = CheckedWorkspace;
export type SpecFile = CheckedApplySpec;

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

/** The checks of `rt.apply()` (src/protocol/apply-spec.ts): one definition of a good file. */
export const checkSpecFile = checkApplySpec;

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
    const field = isShumaError(error) ? error.field : undefined;
    if (field === undefined) throw error;
    const detail = (error as { detail: string }).detail;
    const problem = detail.startsWith(`${field} `) ? detail.slice(field.length + 1) : detail;
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
