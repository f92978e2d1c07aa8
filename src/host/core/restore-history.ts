// The ended part of a workspace brought back after a restart (persistence/finished.ts keeps it):
// finished commands as records whose actor is done (listed by `ps` with their state and exits,
// run again by `restart`), finished pipelines with their result, the last exits of every command,
// and the finished ones' why trails. A record that does not have the expected shape is skipped:
// it is history, and the workspace comes back without it.
import { isPlainObject } from '../../protocol/checks.js';
import type { ActorSnapshot } from '../../protocol/actor-records.js';
import type { CommandSpec, ResolvedRestartPolicy } from '../../protocol/specs.js';
import { validatePipelineSpec } from '../../protocol/pipeline-spec.js';
import { validateCommandSpec } from '../../protocol/validate-spec.js';
import { deferred } from '../processes/deferred.js';
import type { RunEntry } from '../processes/process-table.js';
import type { PersistedHistory, PersistedRun } from '../persistence/finished.js';
import type { WorkspaceEntry } from '../registry/registry.js';
import { launchPlan, unresolvedPlan } from '../spawn/launch-plan.js';
import { newPipelineEntry, settlePipeline } from './commands-and-pipelines.js';
import type { CoreParts } from './core-parts.js';

/** A command's record back in its workspace: a live one's actor comes back with the workspace's; a finished one's `snapshot` is its last. */
export async function restoreCommandEntry(
  ws: WorkspaceEntry,
  command: { key: string; label: string; spec: CommandSpec; policy: ResolvedRestartPolicy },
  snapshot: ActorSnapshot | null,
): Promise<void> {
  const plan = await launchPlan(ws, command.spec).catch(() => unresolvedPlan(ws, command.spec));
  const firstRun = deferred<RunEntry>();
  // Nobody awaits a restored command's first run: it ran before the restart.
  firstRun.promise.catch(() => undefined);
  ws.commands.set(command.key, { ...plan, label: command.label, key: command.key, wsId: ws.id, policy: command.policy, snapshot, observers: new Set(), firstRun });
}

function isRun(value: unknown): value is PersistedRun {
  return isPlainObject(value) && typeof value.runId === 'string' && typeof value.key === 'string' && typeof value.pid === 'number' && isPlainObject(value.exit);
}

/** An ended run back in the process table: not alive, its exit known and heard. */
function restoreRun(core: CoreParts, ws: WorkspaceEntry, run: PersistedRun): RunEntry | null {
  if (core.table.get(run.runId)) return null;
  const entry = core.table.add(
    {
      id: run.runId,
      key: run.key,
      wsId: ws.id,
      label: run.label,
      pid: run.pid,
      restarts: run.restarts,
      startedAt: run.startedAt,
      pipelineId: run.pipelineId ?? undefined,
      ...(run.node !== undefined ? { node: run.node } : {}),
    },
    // Its output is in its log files, not in a ring.
    0,
  );
  entry.alive = false;
  entry.exit = run.exit;
  entry.reason = run.reason ?? null;
  entry.outputEnded = true;
  entry.outputDone = true;
  core.table.hear(entry);
  if (run.pipelineId === null) core.why.alias(run.runId, run.key);
  return entry;
}

export async function restoreHistory(core: CoreParts, ws: WorkspaceEntry, history: PersistedHistory | undefined): Promise<void> {
  if (!isPlainObject(history)) return;
  const runs = Array.isArray(history.runs) ? history.runs.filter(isRun) : [];
  for (const command of Array.isArray(history.commands) ? history.commands : []) {
    if (!isPlainObject(command) || typeof command.key !== 'string' || ws.commands.has(command.key) || !isPlainObject(command.snapshot)) continue;
    let spec;
    try {
      spec = validateCommandSpec(command.spec);
    } catch {
      continue;
    }
    await restoreCommandEntry(ws, { ...command, spec }, { value: command.snapshot.value, status: 'done', context: command.snapshot.context });
  }
  // Oldest first, as they ran: `ps` shows a command's latest run.
  const restored = new Map<string, RunEntry>();
  for (const run of runs) {
    const entry = restoreRun(core, ws, run);
    if (entry) restored.set(run.runId, entry);
  }
  for (const p of Array.isArray(history.pipelines) ? history.pipelines : []) {
    if (!isPlainObject(p) || typeof p.id !== 'string' || ws.pipelines.has(p.id) || !isPlainObject(p.snapshot)) continue;
    let spec;
    try {
      spec = validatePipelineSpec(p.spec);
    } catch {
      continue;
    }
    const nodes = await Promise.all(spec.nodes.map((node) => launchPlan(ws, node).catch(() => unresolvedPlan(ws, node))));
    const pipeline = newPipelineEntry(p.id, ws, spec, nodes);
    pipeline.started.resolve();
    pipeline.snapshot = { value: p.snapshot.value, status: 'done', context: p.snapshot.context };
    pipeline.currentRuns = [...restored.values()].filter((run) => run.pipelineId === p.id);
    ws.pipelines.set(p.id, pipeline);
    core.pipelines.set(p.id, pipeline);
    settlePipeline(core, pipeline);
  }
  for (const [key, entries] of Object.entries(isPlainObject(history.why) ? history.why : {})) {
    if (Array.isArray(entries)) core.why.restore(key, entries.filter((e) => isPlainObject(e) && typeof e.at === 'number' && typeof e.text === 'string'));
  }
}
