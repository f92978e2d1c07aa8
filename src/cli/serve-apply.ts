// The daemon's side of `shuma apply <file>`: the runtime's apply (which plans, checks and
// converges), with the labels of the workspaces it may make claimed meanwhile, so that a `run -w`
// of such a label waits for apply's workspace instead of making a second one.
import type { Workspace } from '../host/workspace-handle.js';
import type { ApplyRequest } from '../protocol/control.js';
import type { ApplyResult } from '../protocol/control-results.js';
import { isPlainObject } from '../protocol/checks.js';
import { findWorkspace } from './names.js';
import type { ServeContext } from './serve-context.js';

export async function applyFile({ rt, core, workspaces }: ServeContext, request: ApplyRequest): Promise<ApplyResult> {
  core.ensureOpen();
  const options = { prune: request.prune === true, dryRun: request.dryRun === true };
  const labels = labelsOf(request.file).filter((label) => !findWorkspace(core, label) && !workspaces.isBeingMade(label));
  if (options.dryRun || labels.length === 0) return rt.apply(request.file as Parameters<typeof rt.apply>[0], options);
  const claims = labels.map((label) => [label, deferred()] as const);
  for (const [label, claim] of claims) workspaces.claim(label, claim.promise);
  try {
    const report = await rt.apply(request.file as Parameters<typeof rt.apply>[0], options);
    for (const [label, claim] of claims) {
      const made = findWorkspace(core, label);
      if (made) claim.resolve(rt.workspace(made.id)!);
      else claim.reject(new Error(`apply made no workspace ${label}`));
    }
    return report;
  } catch (error) {
    for (const [, claim] of claims) claim.reject(error);
    throw error;
  } finally {
    for (const [label] of claims) workspaces.release(label);
  }
}

/** The workspace labels a (not yet checked) spec names; the runtime checks the rest. */
function labelsOf(file: unknown): string[] {
  if (!isPlainObject(file) || !Array.isArray(file.workspaces)) return [];
  return file.workspaces.flatMap((w: unknown) => (isPlainObject(w) && typeof w.label === 'string' ? [w.label] : []));
}

function deferred(): { promise: Promise<Workspace>; resolve: (ws: Workspace) => void; reject: (error: unknown) => void } {
  let resolve!: (ws: Workspace) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<Workspace>((yes, no) => ((resolve = yes), (reject = no)));
  promise.catch(() => undefined); // nobody may be waiting on it
  return { promise, resolve, reject };
}
