import { ShumaError } from '../../protocol/errors.js';
import { validatePipelineSpec, type PipelineSpec } from '../../protocol/pipeline-spec.js';
import { DEFAULT_GRACE_MS, type CommandSpec } from '../../protocol/specs.js';
import { stateName } from '../../protocol/state-value.js';
import { resolveProbe } from '../../protocol/supervision-spec.js';
import { checkGroupName } from '../../protocol/validate-supervision.js';
import { resolveRestartPolicy, validateCommandSpec, validateGraceMs } from '../../protocol/validate-spec.js';
import { deferred } from '../processes/deferred.js';
import type { RunEntry } from '../processes/process-table.js';
import type { CommandEntry, LaunchPlan, PipelineEntry, PipelineExit, PipelineResult, StopResult, WorkspaceEntry } from '../registry/registry.js';
import { launchPlan, structuredCloneSpec } from '../spawn/launch-plan.js';
import { fail } from '../../protocol/checks.js';
import type { CoreParts } from './core-parts.js';
import { resolveDependencies } from './dependencies.js';
import { uniqueLabel } from './command-control.js';
import { canSplice, pipelineStrategy } from './pipeline-strategy.js';
import { ensureOpen, ensureRunning, pipelineEntry, workspaceEntry } from './guards.js';

// Running things in a workspace: a command (its actor asks for each run), a pipeline (its
// actor asks for all its nodes at once), and what is read back: logs, a pipeline's result.

/**
 * Commands run in a workspace: one (run) or a set declared together (runAll, a spec file),
 * whose dependencies may name each other in any order. All are checked before any starts; each
 * starts once its dependencies hold. Resolves with every first run; rejects with the first
 * that failed (the others go on).
 */
export async function runCommands(core: CoreParts, wsId: string, inputs: readonly CommandSpec[], asSet: boolean): Promise<RunEntry[]> {
  ensureOpen(core);
  const ws = workspaceEntry(core, wsId);
  ensureRunning(core, ws);
  if (!Array.isArray(inputs)) throw new ShumaError('INVALID_ARGUMENT', `runAll(specs) needs an array of command specs (got ${typeof inputs})`);
  const specs = inputs.map((input, i) => validateCommandSpec(structuredCloneSpec(input), asSet ? `commands[${i}]` : ''));
  specs.forEach((spec, i) => checkGroupName(ws.spec.groups, spec.group, asSet ? `commands[${i}].group` : 'group'));
  const plans = await Promise.all(specs.map((spec) => launchPlan(ws, spec)));
  ensureOpen(core);
  ensureRunning(core, ws);
  const labels = setLabels(ws, plans.map((plan, i) => ({ label: plan.label, chosen: specs[i]!.label !== undefined })), asSet);
  const newcomers = plans.map((plan, i) => ({ key: core.newId(), label: labels[i]!, spec: specs[i]! }));
  const lastExitOf = (key: string) => core.table.ofWorkspace(ws.id).filter((run) => run.key === key).at(-1)?.exit ?? null;
  const deps = resolveDependencies(ws, newcomers, lastExitOf);
  // Every field named, in one order: one object shape for every command (a spread of the plan
  // made V8 build its hidden class anew at each run).
  const commands = plans.map((plan, i): CommandEntry => ({
    key: newcomers[i]!.key,
    wsId: ws.id,
    label: newcomers[i]!.label,
    spec: plan.spec,
    policy: resolveRestartPolicy(plan.spec.restart),
    file: plan.file,
    cwd: plan.cwd,
    env: plan.env,
    snapshot: null,
    observers: new Set(),
    firstRun: deferred(),
  }));
  for (const [i, command] of commands.entries()) {
    ws.commands.set(command.key, command);
    const probe = resolveProbe(command.spec.ready);
    core.toWorkspace(ws, {
      type: 'RUN',
      at: core.clock.now(),
      key: command.key,
      label: command.label,
      policy: command.policy,
      probe,
      deps: deps[i] ?? [],
      ...(command.spec.group !== undefined ? { group: command.spec.group } : {}),
    });
    // Waiting for nothing, its actor asks for its first run at once: the placement may start it now.
    if ((deps[i] ?? []).length === 0 && probe === null) core.placementOf(ws).runAhead?.(ws, command);
  }
  const settled = await Promise.allSettled(commands.map((command) => command.firstRun.promise));
  for (const [i, outcome] of settled.entries()) {
    if (outcome.status !== 'rejected') continue;
    ws.commands.delete(commands[i]!.key);
    ws.changes++;
  }
  const failed = settled.find((outcome) => outcome.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((outcome) => (outcome as PromiseFulfilledResult<RunEntry>).value);
}

/** Labels unique within the workspace, the set's own included (a chosen one taken is an error). */
function setLabels(ws: WorkspaceEntry, wanted: ReadonlyArray<{ label: string; chosen: boolean }>, asSet: boolean): string[] {
  const labels: string[] = [];
  for (const [i, { label, chosen }] of wanted.entries()) {
    let unique = uniqueLabel(ws, label, chosen);
    if (labels.includes(unique)) {
      if (chosen) {
        fail(
          asSet ? `commands[${i}].label` : 'label',
          `${JSON.stringify(unique)} is also the label of another command of the same set: labels are unique within a workspace; choose another label`,
        );
      }
      for (let n = 2; labels.includes(unique) || uniqueLabel(ws, unique, false) !== unique; n++) unique = `${label}-${n}`;
    }
    labels.push(unique);
  }
  return labels;
}

export async function runPipeline(core: CoreParts, input: PipelineSpec): Promise<PipelineEntry> {
  ensureOpen(core);
  const spec = validatePipelineSpec(structuredCloneSpec(input));
  const ws = workspaceEntry(core, spec.workspace);
  ensureRunning(core, ws);
  const nodes: LaunchPlan[] = [];
  for (const [i, node] of spec.nodes.entries()) {
    try {
      nodes.push(await launchPlan(ws, node));
    } catch (error) {
      // Say which node: the same program may appear in several.
      if (error instanceof ShumaError) {
        throw new ShumaError(error.code, `nodes[${i}] (${node.label}): ${error.detail}`, {
          field: `nodes[${i}].${error.field ?? 'exec'}`,
          ...(error.osCode ? { cause: error.osCode } : {}),
        });
      }
      throw error;
    }
  }
  ensureOpen(core);
  ensureRunning(core, ws);
  const pipeline = newPipelineEntry(core.newId(), ws, spec, nodes);
  const strategy = pipelineStrategy(ws, spec);
  if (strategy.strategyNote) core.logger.warn({ ws: ws.id, pipeline: pipeline.id, label: spec.label }, strategy.strategyNote);
  ws.pipelines.set(pipeline.id, pipeline);
  core.pipelines.set(pipeline.id, pipeline);
  core.toWorkspace(ws, {
    type: 'RUN_PIPELINE',
    at: core.clock.now(),
    key: pipeline.id,
    label: spec.label,
    nodeLabels: spec.nodes.map((node) => node.label),
    upstreamLabels: [...new Set(spec.edges.map((edge) => edge.from))],
    discern: spec.discern ?? 'any',
    policy: resolveRestartPolicy(spec.restart),
    ...strategy,
  });
  try {
    await pipeline.started.promise;
  } catch (error) {
    ws.pipelines.delete(pipeline.id);
    ws.changes++;
    core.pipelines.delete(pipeline.id);
    throw error;
  }
  return pipeline;
}

export function newPipelineEntry(id: string, ws: WorkspaceEntry, spec: PipelineSpec, nodes: LaunchPlan[]): PipelineEntry {
  const pipeline: PipelineEntry = {
    kind: 'pipeline',
    id,
    wsId: ws.id,
    label: spec.label,
    spec,
    nodes,
    groups: new Set(),
    hostStop: null,
    pendingSpawns: 0,
    snapshot: null,
    observers: new Set(),
    currentRuns: [],
    splices: canSplice(ws, spec),
    stopResult: null,
    started: deferred(),
    done: deferred(),
  };
  pipeline.started.promise.catch(() => undefined);
  return pipeline;
}

/** Stops one pipeline's processes only; its workspace and other commands go on. */
export async function stopPipeline(core: CoreParts, id: string, graceMs: number | undefined): Promise<StopResult> {
  const grace = validateGraceMs(graceMs) ?? DEFAULT_GRACE_MS;
  const pipeline = pipelineEntry(core, id);
  const ws = core.registry.get(pipeline.wsId);
  if (ws && !pipeline.done.settled) core.toChild(ws, pipeline.id, { type: 'STOP', at: core.clock.now(), graceMs: grace });
  await pipeline.done.promise;
  return pipeline.stopResult ?? { reaped: 0, escaped: [] };
}

/** The pipeline actor ended (or its workspace did): its result is known. */
export function settlePipeline(core: CoreParts, pipeline: PipelineEntry): void {
  const state = pipeline.snapshot ? stateName(pipeline.snapshot.value) : 'stopped';
  const context = (pipeline.snapshot?.context ?? {}) as { exits?: Record<string, PipelineExit>; restarts?: number };
  core.flows.drop(pipeline);
  pipeline.started.reject(new ShumaError('SPAWN_FAILED', `pipeline ${pipeline.label} ended before it started`));
  const result: PipelineResult = {
    ok: state === 'succeeded',
    exits: context.exits ?? {},
    restarts: context.restarts ?? 0,
    state,
  };
  // The actor hears a node's exit before the node's last output is read (its `exited` waits for
  // both): `done` waits for that output too, so logs() after `await p.done` has every byte.
  const draining = core.table.ofWorkspace(pipeline.wsId).filter((run) => run.pipelineId === pipeline.id && run.exit && !run.outputDone);
  if (draining.length === 0) pipeline.done.resolve(result);
  else {
    void Promise.all(draining.map((run) => run.exited.promise)).then(() => {
      pipeline.done.resolve(result);
      // Done, it is saved among the finished pipelines (persistence/finished.ts), later than its actor's end.
      core.state?.markDirty(core.registry.get(pipeline.wsId));
    });
  }
}

export function logsOf(core: CoreParts, wsId: string, runId: string, stream: 'stdout' | 'stderr' | 'both', tailBytes: number): Buffer {
  const ws = workspaceEntry(core, wsId);
  const run = typeof runId === 'string' ? core.table.get(runId) : undefined;
  if (!run || run.wsId !== ws.id) {
    throw new ShumaError(
      'COMMAND_NOT_FOUND',
      `workspace ${ws.id} (${ws.label}) has no command ${JSON.stringify(runId)}: commands() lists its commands`,
    );
  }
  if (stream === 'stdout') return run.stdout.tail(tailBytes);
  if (stream === 'stderr') return run.stderr.tail(tailBytes);
  // As the original: stdout's tail, then stderr's.
  return Buffer.concat([run.stdout.tail(tailBytes), run.stderr.tail(tailBytes)]);
}
