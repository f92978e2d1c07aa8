// `rt.apply(spec)`: converges the runtime on a spec, as `kubectl apply` does. Everything is
// decided and checked first (apply-plan.ts), so a bad spec changes nothing; then each workspace
// of the spec in turn: a recreated one stopped and made again, commands restarted or updated in
// place, the missing ones run together (their dependsOn may name each other and the live ones),
// pipelines run, and with `prune` what the spec no longer has removed last. A failure past the
// checks (a placement refused, a spawn that fails) stops the workspaces this apply made and is
// thrown; what was changed in live workspaces before it stays changed.
import { checkApplySpec, type ApplyAction, type ApplyOptions, type ApplyReport } from '../protocol/apply-spec.js';
import { checkCallOptions, describe } from '../protocol/checks.js';
import { ShumaError } from '../protocol/errors.js';
import type { RuntimeCore } from './core/runtime-core.js';
import { planApply, preflight, type WorkspaceStep } from './core/apply-plan.js';
import { respecCommand } from './core/command-respec.js';
import { forgetPipeline } from './core/pipeline-forget.js';
import type { Pipeline } from './pipeline-handle.js';
import type { PipelineSpec } from '../protocol/pipeline-spec.js';
import type { WorkspaceSpec } from '../protocol/specs.js';
import type { Workspace } from './workspace-handle.js';

/** What apply uses of the runtime's public API (runtime.ts is the one that calls apply). */
interface Runtime {
  createWorkspace(spec: WorkspaceSpec): Promise<Workspace>;
  workspace(id: string): Workspace | undefined;
  runPipeline(spec: PipelineSpec): Promise<Pipeline>;
}


export async function applySpec(rt: Runtime, core: RuntimeCore, input: unknown, given?: ApplyOptions): Promise<ApplyReport> {
  core.ensureOpen();
  const options = checkCallOptions(given, 'options', ['prune', 'dryRun']);
  for (const flag of ['prune', 'dryRun'] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== 'boolean') {
      throw new ShumaError('INVALID_ARGUMENT', `options.${flag} must be true or false (got ${describe(options[flag])})`, { field: flag });
    }
  }
  const spec = checkApplySpec(structuredClone(input));
  const steps = planApply(core, spec, options.prune === true);
  await preflight(core, steps);
  if (options.dryRun === true) return { dryRun: true, actions: steps.flatMap(plannedActions) };
  const actions: ApplyAction[] = [];
  const made: Workspace[] = [];
  try {
    for (const step of steps) actions.push(...(await applyWorkspace(rt, core, step, made)));
  } catch (error) {
    await Promise.all(made.map((ws) => ws.stop({ graceMs: 0 }).catch(() => undefined)));
    throw error;
  }
  return { dryRun: false, actions };
}

/** What a step will do, before it is done (a dry run). */
function plannedActions(step: WorkspaceStep): ApplyAction[] {
  const ws = step.want.spec.label;
  const fresh = !step.live || step.recreate;
  const actions: ApplyAction[] = [
    step.recreate
      ? { kind: 'workspace', name: ws, action: 'recreated', changed: step.recreate }
      : { kind: 'workspace', name: ws, action: step.live ? 'unchanged' : 'created', ...(step.live ? { id: step.live.id } : {}) },
  ];
  for (const c of step.commands) {
    const action = fresh || c.change === 'create' ? 'created' : c.change === 'restart' ? 'restarted' : c.change === 'update' ? 'updated' : 'unchanged';
    actions.push({ kind: 'command', name: `${ws}/${c.label}`, action, ...(c.fields.length > 0 && !fresh ? { changed: c.fields } : {}) });
  }
  for (const p of step.pipelines) {
    const action = fresh || p.change === 'create' ? 'created' : p.change === 'restart' ? 'restarted' : 'unchanged';
    actions.push({ kind: 'pipeline', name: `${ws}/${p.spec.label}`, action, ...(p.fields.length > 0 && !fresh ? { changed: p.fields } : {}) });
  }
  for (const c of step.pruneCommands) actions.push({ kind: 'command', name: `${ws}/${c.label}`, action: 'pruned' });
  for (const p of step.prunePipelines) actions.push({ kind: 'pipeline', name: `${ws}/${p.label}`, action: 'pruned' });
  return actions;
}

async function applyWorkspace(rt: Runtime, core: RuntimeCore, step: WorkspaceStep, made: Workspace[]): Promise<ApplyAction[]> {
  const actions = plannedActions(step);
  const name = step.want.spec.label;
  const find = (kind: ApplyAction['kind'], label: string) => actions.find((a) => a.kind === kind && a.name === `${name}/${label}` && a.action !== 'pruned')!;
  let ws: Workspace;
  if (!step.live || step.recreate) {
    if (step.live) await rt.workspace(step.live.id)?.stop();
    ws = await rt.createWorkspace(step.want.spec);
    made.push(ws);
    actions[0]!.id = ws.id;
    const commands = await ws.runAll(step.want.commands);
    for (const command of commands) find('command', command.label).id = command.id;
    for (const p of step.want.pipelines) find('pipeline', p.label).id = (await rt.runPipeline({ ...p, workspace: ws.id })).id;
    return actions;
  }
  ws = rt.workspace(step.live.id)!;
  const entry = step.live;
  for (const c of step.commands) {
    if (c.change !== 'restart' && c.change !== 'update') continue;
    const run = await respecCommand(core, core.commandControl, entry, c.live!.key, c.spec, c.change === 'restart');
    if (run) find('command', c.label).id = run.id;
  }
  const missing = step.commands.filter((c) => c.change === 'create');
  if (missing.length > 0) {
    const commands = await ws.runAll(missing.map((c) => c.spec));
    for (const command of commands) find('command', command.label).id = command.id;
  }
  for (const c of step.commands) {
    const action = find('command', c.label);
    if (action.id === undefined && c.live) action.id = core.table.ofWorkspace(entry.id).filter((run) => run.key === c.live!.key).at(-1)?.id ?? c.live.key;
  }
  for (const p of step.pipelines) {
    const action = find('pipeline', p.spec.label);
    if (p.change === 'unchanged') {
      action.id = p.live!.id;
      continue;
    }
    if (p.change === 'restart') for (const old of [p.live!, ...p.older]) await forgetPipeline(core, old.id);
    action.id = (await rt.runPipeline({ ...p.spec, workspace: ws.id })).id;
  }
  for (const c of step.pruneCommands) await ws.removeCommand(c.key);
  for (const p of step.prunePipelines) await forgetPipeline(core, p.id);
  return actions;
}
