import { ShumaError } from '../../protocol/errors.js';
import type { TapAttempt } from '../flows/flow-hub.js';
import type { RunEntry } from '../processes/process-table.js';
import type { LaunchPlan, PipelineEntry, WorkspaceEntry } from '../registry/registry.js';
import { growEdges, holdWhileNodesLive } from '../spawn/grown-edges.js';
import { closePipes, openPipes, type KernelPipe } from '../spawn/kernel-pipes.js';
import type { SpawnedProcess, SpawnOrder } from '../spawn/spawner.js';
import type { HostActorDeps } from './host-actor-deps.js';
import { spawnOrError } from './spawn-or-error.js';

// A pipeline's nodes started together, wired through kernel pipes (or through the runtime when
// tapped), or none of them.

/** What a pipeline's spawn left: the nodes that started (all of them, unless it failed). */
export interface PipelineSpawnOutcome {
  spawned: SpawnedProcess[];
  tap: TapAttempt | null;
  failure: ShumaError | null;
}

export async function spawnNodes(
  deps: HostActorDeps,
  orderFor: (ws: WorkspaceEntry, plan: LaunchPlan) => SpawnOrder,
  ws: WorkspaceEntry,
  pipeline: PipelineEntry,
  only?: ReadonlySet<string>,
): Promise<PipelineSpawnOutcome> {
  const edges = pipeline.spec.tap ? [] : pipeline.spec.edges;
  let pipes: KernelPipe[] = [];
  let tap: TapAttempt | null = null;
  const spawned: SpawnedProcess[] = [];
  let failure: ShumaError | null = null;
  let giveBack = () => {};
  const grownHold = holdWhileNodesLive(() => giveBack());
  try {
    // Tapped: each node's edge ends are kernel pipes to the runtime, which pumps them.
    if (pipeline.spec.tap) tap = await deps.taps.prepare(ws, pipeline, only);
    pipes = await openPipes(edges.length);
    giveBack = growEdges(pipes);
    for (const node of nodesOf(pipeline, only)) {
      const stdio: NonNullable<SpawnOrder['stdio']> = tap ? tap.stdioOf(node.label) : {};
      edges.forEach((edge, i) => {
        if (edge.to === node.label) stdio.stdin = pipes[i]!.readFd;
        if (edge.from === node.label) stdio[edge.stream ?? 'stdout'] = pipes[i]!.writeFd;
      });
      const result = await spawnOrError(deps.spawner, { ...orderFor(ws, node), stdio });
      if (result instanceof ShumaError) {
        failure = result;
        break;
      }
      spawned.push(result);
      grownHold.node(result);
    }
  } catch (error) {
    failure = error instanceof ShumaError ? error : new ShumaError('SPAWN_FAILED', String(error));
  } finally {
    closePipes(pipes);
    tap?.closeChildEnds();
    grownHold.started();
  }
  return { spawned, tap, failure };
}

/** A pipeline's nodes to start: all, or only those a rest_for_one splice restarts. */
export function nodesOf(pipeline: PipelineEntry, only?: ReadonlySet<string>): readonly LaunchPlan[] {
  return only ? pipeline.nodes.filter((node) => only.has(node.label)) : pipeline.nodes;
}

/** The current runs after a splice: the new ones in place of those they replace, in node order. */
export function spliceRuns(pipeline: PipelineEntry, runs: RunEntry[]): RunEntry[] {
  const byLabel = new Map([...pipeline.currentRuns, ...runs].map((run) => [run.label, run]));
  return pipeline.nodes.map((node) => byLabel.get(node.label)).filter((run): run is RunEntry => run !== undefined);
}

