import { ShumaError } from '../../protocol/errors.js';
import { validatePipelineSpec, type PipelineSpec } from '../../protocol/pipeline-spec.js';
import { DEFAULT_GRACE_MS, type CommandSpec } from '../../protocol/specs.js';
import { stateName } from '../../protocol/state-value.js';
import { resolveRestartPolicy, validateCommandSpec, validateGraceMs } from '../../protocol/validate-spec.js';
import { deferred } from '../processes/deferred.js';
import type { RunEntry } from '../processes/process-table.js';
import type { CommandEntry, LaunchPlan, PipelineEntry, PipelineExit, StopResult, WorkspaceEntry } from '../registry/registry.js';
import { launchPlan, structuredCloneSpec } from '../spawn/launch-plan.js';
import type { CoreParts } from './core-parts.js';
import { uniqueLabel } from './command-control.js';
import { ensureOpen, ensureRunning, pipelineEntry, workspaceEntry } from './guards.js';

// Running things in a workspace: a command (its actor asks for each run), a pipeline (its
// actor asks for all its nodes at once), and what is read back: logs, a pipeline's result.

export async function runCommand(core: CoreParts, wsId: string, input: CommandSpec): Promise<RunEntry> {
  ensureOpen(core);
  const ws = workspaceEntry(core, wsId);
  ensureRunning(ws);
  const spec = validateCommandSpec(structuredCloneSpec(input));
  const plan = await launchPlan(ws, spec);
  ensureOpen(core);
  ensureRunning(ws);
  const command: CommandEntry = {
    ...plan,
    label: uniqueLabel(ws, plan.label, spec.label !== undefined),
    key: core.newId(),
    wsId: ws.id,
    policy: resolveRestartPolicy(spec.restart),
    snapshot: null,
    observers: new Set(),
    firstRun: deferred(),
  };
  ws.commands.set(command.key, command);
  core.toWorkspace(ws, {
    type: 'RUN',
    at: core.clock.now(),
    key: command.key,
    label: command.label,
    policy: command.policy,
  });
  try {
    return await command.firstRun.promise;
  } catch (error) {
    ws.commands.delete(command.key);
    throw error;
  }
}

export async function runPipeline(core: CoreParts, input: PipelineSpec): Promise<PipelineEntry> {
  ensureOpen(core);
  const spec = validatePipelineSpec(structuredCloneSpec(input));
  const ws = workspaceEntry(core, spec.workspace);
  ensureRunning(ws);
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
  ensureRunning(ws);
  const pipeline = newPipelineEntry(core.newId(), ws, spec, nodes);
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
  });
  try {
    await pipeline.started.promise;
  } catch (error) {
    ws.pipelines.delete(pipeline.id);
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
  pipeline.done.resolve({
    ok: state === 'succeeded',
    exits: context.exits ?? {},
    restarts: context.restarts ?? 0,
    state,
  });
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
