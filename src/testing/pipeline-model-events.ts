import { splicesNodes, validatePipelineSpec, type PipelineSpec } from '../protocol/pipeline-spec.js';
import { resolveRestartPolicy } from '../protocol/validate-spec.js';
import { modelBackoffMs } from './model-policy.js';
import { nodeFailed, pipelineFailed, type PipelineModelEvent, type PipelineModelInput, type PipelineModelSnapshot } from './pipeline-model.js';

// What a test can do to the pipeline model in each of its states, and the keys that tell its
// states apart for the path search (pipeline-model-paths.ts).

export interface PipelineModelOptions {
  /** How nodes may end (default all four; 'sigpipe' is offered only for nodes that feed another). */
  outcomes?: Array<'exit0' | 'exit1' | 'kill' | 'sigpipe'>;
  /** Include pipeline.stop() with this grace (and with 0); false: no stops. Default 1000. */
  stopGraceMs?: number | false;
  /** Include a program that cannot be started (before the run, and between attempts). Default true. */
  spawnFailures?: boolean;
  /** Include the clock stopping one ms short of each deadline. Default true. */
  ticks?: boolean;
  /** With unlimited restarts (maxRestarts 0): explore this many relaunches. Default 2. */
  restartDepth?: number;
  /** 'transitions' (default) or 'states': see modelPaths(). */
  coverage?: 'states' | 'transitions';
  /** Also the simple paths when the model has at most this many abstract states (default: none). */
  simplePaths?: boolean | number;
  /** At most this many paths, chosen for coverage (default 40). */
  maxPaths?: number;
}

/** The model's input for a pipeline spec (checked as rt.runPipeline would). */
export function pipelineModelInput(spec: PipelineSpec): PipelineModelInput {
  const checked = validatePipelineSpec(structuredClone(spec));
  // Untapped, rest_for_one acts as one_for_all, which the model knows; a splice it does not.
  if (splicesNodes(checked)) {
    throw new Error(`pipeline ${checked.label}: the pipeline model knows one_for_all only; a tapped rest_for_one pipeline (the splice) is not modelled`);
  }
  const policy = resolveRestartPolicy(checked.restart);
  return {
    labels: checked.nodes.map((node) => node.label),
    upstream: [...new Set(checked.edges.map((edge) => edge.from))],
    discern: checked.discern ?? 'any',
    policy: { onFailure: policy.onFailure, backoffMs: policy.backoffMs, maxBackoffMs: policy.maxBackoffMs, maxRestarts: policy.maxRestarts },
  };
}

/** The events a test can cause in a model state, with the clock moves worked out. */
export function pipelineModelEvents(snapshot: PipelineModelSnapshot, options: PipelineModelOptions = {}): PipelineModelEvent[] {
  const c = snapshot.context;
  const outcomes = options.outcomes ?? ['exit0', 'exit1', 'kill', 'sigpipe'];
  const grace = options.stopGraceMs ?? 1000;
  const spawnFailures = options.spawnFailures ?? true;
  const ticks = options.ticks ?? true;
  const depth = c.policy.maxRestarts > 0 ? c.policy.maxRestarts : (options.restartDepth ?? 2);
  const aliveNodes = c.labels.filter((label) => c.ended[label] === undefined);
  // A program that never starts, no backoff and no limit would relaunch forever.
  const canBreak = spawnFailures && !(c.policy.maxRestarts === 0 && c.policy.backoffMs === 0);
  const events: PipelineModelEvent[] = [];
  switch (snapshot.value) {
    case 'idle':
      events.push({ type: 'RUN' });
      if (canBreak && c.broken === null) events.push({ type: 'BREAK', node: c.labels[0]! });
      break;
    case 'running':
    case 'reaping': {
      // Past the depth, with unlimited restarts and no backoff, a failure would relaunch at once
      // and forever: only endings that are no failure are explored there.
      const mayFail = !(c.policy.maxRestarts === 0 && c.policy.backoffMs === 0 && c.restarts >= depth);
      for (const node of aliveNodes) {
        if (outcomes.includes('exit0')) events.push({ type: 'EXIT', node, code: 0 });
        if (outcomes.includes('exit1') && mayFail) events.push({ type: 'EXIT', node, code: 1 });
        if (outcomes.includes('kill') && mayFail) events.push({ type: 'KILL', node });
        if (outcomes.includes('sigpipe') && c.upstream.includes(node)) events.push({ type: 'SIGPIPE', node });
      }
      if (grace !== false) {
        if (grace > 0) events.push({ type: 'STOP', graceMs: grace });
        events.push({ type: 'STOP', graceMs: 0 });
      }
      break;
    }
    case 'backoff': {
      const delay = modelBackoffMs(c);
      if (c.restarts < depth) events.push({ type: 'ELAPSE', ms: c.ticked ? 1 : delay });
      if (ticks && !c.ticked && delay >= 2) events.push({ type: 'TICK', ms: delay - 1 });
      if (grace !== false) events.push({ type: 'STOP', graceMs: grace || 0 });
      if (canBreak) events.push(c.broken === null ? { type: 'BREAK', node: c.labels[0]! } : { type: 'REPAIR', node: c.broken });
      break;
    }
    case 'stopping': {
      const stopGrace = c.graceMs ?? 0;
      for (const node of aliveNodes) events.push({ type: 'EXIT', node, code: 0 });
      if (ticks && !c.ticked && stopGrace >= 2) events.push({ type: 'TICK', ms: stopGrace - 1 });
      events.push({ type: 'ELAPSE', ms: c.ticked ? 1 : stopGrace });
      break;
    }
  }
  return events;
}

/**
 * A state's identity for the graph: exact about everything that decides what can happen next
 * (which nodes still run, whether each ended one counts as failed), blind to the rest (which
 * exit code a failure had: the runner checks the exact statuses along each path anyway).
 */
export function pipelineModelKey(snapshot: PipelineModelSnapshot): string {
  const c = snapshot.context;
  const nodes = c.labels.map((label) => (c.ended[label] === undefined ? '-' : nodeFailed(c, label) ? 'bad' : 'ok'));
  const timed = snapshot.value === 'backoff' || snapshot.value === 'stopping';
  return JSON.stringify([snapshot.value, c.restarts, c.broken, timed && c.ticked, c.started, c.graceMs, nodes]);
}

/**
 * The abstract state that coverage counts, coarse on purpose: how many nodes still run and the
 * discern rule's verdict so far, not which ones. Paths then cover the pipeline's behaviour
 * without one path per combination of nodes, and edge coverage still sends every kind of ending
 * (exit 0, exit 1, SIGKILL, SIGPIPE) of every node through the model.
 */
export function pipelineCoverKey(snapshot: PipelineModelSnapshot): string {
  const c = snapshot.context;
  const running = c.labels.filter((label) => c.ended[label] === undefined).length;
  const timed = snapshot.value === 'backoff' || snapshot.value === 'stopping';
  return JSON.stringify([snapshot.value, c.restarts, c.broken, timed && c.ticked, c.started, running, pipelineFailed(c)]);
}

