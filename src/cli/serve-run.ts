// The daemon's side of `shuma run` and `shuma pipeline …`: specs checked by the API's own
// validators before a workspace is made for them, and a workspace made for a request that then
// failed is stopped again (nothing half-made).
import type { PipelineSpec } from '../protocol/pipeline-spec.js';
import { validatePipelineSpec } from '../protocol/pipeline-spec.js';
import type { PipelineRunSavedRequest, RunRequest } from '../protocol/control.js';
import type { PipelineStarted } from '../protocol/control-results.js';
import { isPlainObject } from '../protocol/checks.js';
import { ShumaError } from '../protocol/errors.js';
import { validatePlacement } from '../protocol/placement-spec.js';
import { validateCommandSpec } from '../protocol/validate-spec.js';
import { findWorkspace } from './names.js';
import type { ServeContext } from './serve-context.js';

export async function runCommand({ core, workspaces }: ServeContext, request: RunRequest) {
  // Checked before a workspace is made for it: a bad spec makes nothing.
  validateCommandSpec(request.spec);
  if (request.placement !== undefined) validatePlacement(request.placement);
  const { ws, created } = await workspaces.workspaceFor(request.workspace, request.placement);
  try {
    const command = await ws.run(request.spec);
    const node = core.table.get(command.id)?.node;
    return {
      workspace: { id: ws.id, label: ws.label, created },
      command: { id: command.id, commandKey: command.commandKey, label: command.label, pid: command.pid, ...(node !== undefined ? { node } : {}) },
    };
  } catch (error) {
    // Nothing half-made: a workspace made for this command goes with it.
    if (created) await ws.stop({ graceMs: 0 }).catch(() => undefined);
    throw error;
  }
}

function started({ rt, core }: ServeContext, id: string, created: boolean): PipelineStarted {
  const p = rt.pipeline(id)!;
  const ws = core.registry.get(p.workspace);
  return { id, label: p.label, workspace: { id: p.workspace, label: ws?.label ?? '', created }, nodes: p.nodes };
}

export async function runPipeline(ctx: ServeContext, input: unknown): Promise<PipelineStarted> {
  const spec = checkPipelineArg(input);
  const { ws, created } = await ctx.workspaces.workspaceFor(String(spec.workspace));
  try {
    const pipe = await ctx.rt.runPipeline({ ...spec, workspace: ws.id } as PipelineSpec);
    return started(ctx, pipe.id, created);
  } catch (error) {
    if (created) await ws.stop({ graceMs: 0 }).catch(() => undefined);
    throw error;
  }
}

export async function savePipeline({ rt, core }: ServeContext, name: string, input: unknown) {
  const spec = checkPipelineArg(input);
  // A saved pipeline names its workspace by id: a label given here is resolved now.
  const ws = typeof spec.workspace === 'string' ? findWorkspace(core, spec.workspace) : undefined;
  await rt.savePipeline(name, { ...spec, workspace: ws ? ws.id : spec.workspace } as unknown as PipelineSpec);
  return { name };
}

export async function runSavedPipeline(ctx: ServeContext, request: PipelineRunSavedRequest): Promise<PipelineStarted> {
  const { rt } = ctx;
  let created = false;
  let wsId: string | undefined;
  // Its workspace, by the name it was saved with unless -w says another: a label no
  // workspace has (any more) makes one, as `pipeline run -w` does.
  const wsName = request.workspace ?? (await rt.getSavedPipeline(request.name))?.workspace;
  if (wsName !== undefined) {
    const found = await ctx.workspaces.workspaceFor(wsName);
    created = found.created;
    wsId = found.ws.id;
  }
  try {
    const pipe = await rt.runSavedPipeline(request.name, wsId === undefined ? {} : { workspace: wsId });
    return started(ctx, pipe.id, created);
  } catch (error) {
    if (created && wsId) await rt.workspace(wsId)?.stop({ graceMs: 0 }).catch(() => undefined);
    throw error;
  }
}

/** A pipeline spec whose workspace is a name: checked by the API's validator (with the name in place). */
function checkPipelineArg(input: unknown): Record<string, unknown> & { workspace: string } {
  validatePipelineSpec(input);
  if (!isPlainObject(input)) throw new ShumaError('INVALID_SPEC', 'spec must be an object');
  return input as Record<string, unknown> & { workspace: string };
}
