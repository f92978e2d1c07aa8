// The daemon's side of `shuma apply <file>`. All or nothing: a failure stops every workspace
// this apply made.
import type { Workspace } from '../host/workspace-handle.js';
import type { ApplyResult } from '../protocol/control.js';
import { ShumaError, isShumaError } from '../protocol/errors.js';
import { findWorkspace } from './names.js';
import type { ServeContext } from './serve-context.js';
import { checkSpecFile } from './spec-file.js';

export async function applyFile({ rt, core, workspaces }: ServeContext, input: unknown): Promise<ApplyResult> {
  core.ensureOpen();
  let file;
  try {
    file = checkSpecFile(input);
  } catch (error) {
    if (isShumaError(error)) throw error;
    throw new ShumaError('INVALID_SPEC', (error as Error).message);
  }
  const labels = file.workspaces.map((w) => w.spec.label);
  for (const [i, label] of labels.entries()) {
    if (labels.indexOf(label) !== i) throw new ShumaError('INVALID_SPEC', `workspaces[${i}].label ${JSON.stringify(label)} is used twice in the file: labels name workspaces`, { field: `workspaces[${i}].label` });
    const live = findWorkspace(core, label);
    if (live || workspaces.isBeingMade(label)) {
      throw new ShumaError(
        'INVALID_ARGUMENT',
        `a workspace labelled ${JSON.stringify(label)} is already running (${live?.id ?? 'being made'}): stop it first (\`shuma stop ${label}\`) or change the label`,
      );
    }
  }
  const made: Workspace[] = [];
  const result: ApplyResult = { workspaces: [] };
  // Claimed before the first await: a concurrent apply or run of the same label waits or is refused.
  const claimed = new Map(file.workspaces.map((w) => [w.spec.label, deferredWorkspace()] as const));
  for (const [label, claim] of claimed) workspaces.claim(label, claim.promise);
  try {
    for (const w of file.workspaces) {
      const ws = await rt.createWorkspace(w.spec);
      claimed.get(w.spec.label)!.resolve(ws);
      made.push(ws);
      const row: ApplyResult['workspaces'][number] = { id: ws.id, label: ws.label, commands: [], pipelines: [] };
      // Declared together: a dependency may name a command listed after it.
      for (const cmd of await ws.runAll(w.commands)) row.commands.push({ id: cmd.id, label: cmd.label, pid: cmd.pid });
      for (const p of w.pipelines) {
        const pipe = await rt.runPipeline({ ...p, workspace: ws.id });
        row.pipelines.push({ id: pipe.id, label: pipe.label });
      }
      result.workspaces.push(row);
    }
  } catch (error) {
    await Promise.all(made.map((ws) => ws.stop({ graceMs: 0 }).catch(() => undefined)));
    for (const claim of claimed.values()) claim.reject(error);
    throw error;
  } finally {
    for (const label of claimed.keys()) workspaces.release(label);
  }
  return result;
}

function deferredWorkspace(): { promise: Promise<Workspace>; resolve: (ws: Workspace) => void; reject: (error: unknown) => void } {
  let resolve!: (ws: Workspace) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<Workspace>((yes, no) => ((resolve = yes), (reject = no)));
  promise.catch(() => undefined); // nobody may be waiting on it
  return { promise, resolve, reject };
}
