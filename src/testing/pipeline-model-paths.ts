import { getInitialSnapshot, getNextSnapshot } from 'xstate';
import type { PipelineSpec } from '../protocol/pipeline-spec.js';
import { modelPaths, type ModelGraphInfo } from './model-paths.js';
import { pipelineCoverKey, pipelineModelEvents, pipelineModelInput, pipelineModelKey, type PipelineModelOptions } from './pipeline-model-events.js';
import { modelBackoffMs } from './model-policy.js';
import { pipelineModelMachine, type PipelineModelEvent, type PipelineModelSnapshot } from './pipeline-model.js';

// Paths through the pipeline model (pipeline-model.ts): chosen by @xstate/graph, or written by
// hand; each step with what the real pipeline actor must show after it.


/** What the real pipeline actor must show after a step. */
export interface PipelineExpectation {
  /**
   * The real machine's state ('running', 'reaping', 'backoff', 'stopping.terminating',
   * 'succeeded', 'failed', 'gaveUp', 'stopped'), or '' before the run.
   */
  state: string;
  /** false: rt.runPipeline() must reject (a node could not start) and no pipeline exists. */
  started: boolean;
  restarts: number;
  /** Exit status of each node of the current attempt that ended; null: not checked. */
  exits: Record<string, number> | null;
  /** In backoff: the delay armed, deadline minus the time of the failure. */
  backoffMs: number | null;
}

export interface PipelineModelStep {
  event: PipelineModelEvent;
  expect: PipelineExpectation;
}

export interface PipelineModelPath {
  /** A readable summary: 'RUN → EXIT a 1 → ELAPSE 100 ms → …'. */
  name: string;
  steps: PipelineModelStep[];
}

export function describeModelEvent(event: PipelineModelEvent): string {
  switch (event.type) {
    case 'RUN':
      return 'RUN';
    case 'EXIT':
      return `EXIT ${event.node} ${event.code}`;
    case 'KILL':
    case 'SIGPIPE':
    case 'BREAK':
    case 'REPAIR':
      return `${event.type} ${event.node}`;
    case 'TICK':
    case 'ELAPSE':
      return `${event.type} ${event.ms} ms`;
    case 'STOP':
      return `STOP grace ${event.graceMs} ms`;
  }
}

const REAL_STATE: Record<string, string> = { idle: '', stopping: 'stopping.terminating' };

export function pipelineExpectation(snapshot: PipelineModelSnapshot): PipelineExpectation {
  const c = snapshot.context;
  const state = String(snapshot.value);
  return {
    state: REAL_STATE[state] ?? state,
    started: c.started,
    restarts: c.restarts,
    // Once stopped by a kill, which exits were recorded before the end is a race: not checked.
    exits: state === 'stopped' || state === 'idle' ? null : Object.fromEntries(Object.entries(c.ended).map(([label, end]) => [label, end.status])),
    backoffMs: state === 'backoff' ? modelBackoffMs(c) : null,
  };
}

/**
 * Paths through the model of `spec`'s pipeline, chosen by modelPaths(): each starts with RUN
 * (or a BREAK before it) and together they reach every abstract state and take as many abstract
 * transitions as `maxPaths` allows. Deterministic for a given spec and options.
 */
export function pipelineModelPaths(
  spec: PipelineSpec,
  options: PipelineModelOptions = {},
): PipelineModelPath[] & { info: ModelGraphInfo } {
  const input = pipelineModelInput(spec);
  const { paths, info } = modelPaths(pipelineModelMachine, {
    input,
    events: (snapshot) => pipelineModelEvents(snapshot, options),
    key: pipelineModelKey,
    coverKey: pipelineCoverKey,
    coverage: options.coverage ?? 'transitions',
    simplePaths: options.simplePaths ?? false,
    maxPaths: options.maxPaths ?? 40,
  });
  const result = paths.map((path) => ({
    name: path.steps.map((step) => describeModelEvent(step.event)).join(' → '),
    steps: path.steps.map((step) => ({ event: step.event, expect: pipelineExpectation(step.snapshot) })),
  }));
  return Object.assign(result, { info });
}

/** An event of a path written by hand: TICK and ELAPSE may leave the clock move to the model. */
export type PipelineModelEventInput = PipelineModelEvent | { type: 'TICK' } | { type: 'ELAPSE' };

/**
 * A path written by hand: the events are yours, the model says what the real actor must show
 * after each (run it with runPipelineModelPath). Throws when an event cannot happen where the
 * model is by then (e.g. the exit of a node that already ended). STOP takes any grace.
 */
export function pipelineModelPath(
  spec: PipelineSpec,
  events: PipelineModelEventInput[],
  options: PipelineModelOptions = {},
): PipelineModelPath {
  let snapshot = getInitialSnapshot(pipelineModelMachine, pipelineModelInput(spec));
  const steps: PipelineModelStep[] = [];
  for (const wanted of events) {
    const offered = pipelineModelEvents(snapshot, { ...options, stopGraceMs: options.stopGraceMs || 1000 });
    const same = (event: PipelineModelEvent) =>
      Object.entries(wanted).every(([field, value]) => (event as unknown as Record<string, unknown>)[field] === value);
    const event =
      wanted.type === 'STOP' ? (offered.some((e) => e.type === 'STOP') ? wanted : undefined) : offered.find(same);
    if (!event) {
      const where = `${String(snapshot.value)} ${JSON.stringify(pipelineExpectation(snapshot))}`;
      throw new Error(
        `${JSON.stringify(wanted)} cannot happen in ${where} (after ${steps.length} events); what can: ${offered.map(describeModelEvent).join(', ') || 'nothing'}`,
      );
    }
    snapshot = getNextSnapshot(pipelineModelMachine, snapshot, event);
    steps.push({ event, expect: pipelineExpectation(snapshot) });
  }
  return { name: steps.map((step) => describeModelEvent(step.event)).join(' → '), steps };
}

