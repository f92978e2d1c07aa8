import { assign, setup, type SnapshotFrom } from 'xstate';
import { modelBackoffMs, modelMayRestart, type ModelPolicy } from './model-policy.js';

// Model-based tests of a pipeline spec: an abstract model of what the pipeline actor should do
// (written from the documented rules, not from the machine's code), paths through it chosen with
// @xstate/graph, and a runner that drives a real runtime with real processes along one path,
// checking the real actor's state after every step. See docs/model-based-testing.md.
// This file is the model; pipeline-model-events.ts says what a test can do in each of its
// states, pipeline-model-paths.ts chooses paths, pipeline-model-runner.ts runs one.
//
// The nodes' programs are replaced by puppets (src/testing/puppets.ts): processes whose exit the
// test decides. Everything else of the spec is kept: the edges (real pipes), `tap`, `discern`
// and the `restart` policy: those decide what the pipeline actor does.

// ── the model ──────────────────────────────────────────────────────────────────────────

/** What a test does to a running pipeline, one step of a path. */
export type PipelineModelEvent =
  /** rt.runPipeline(spec) */
  | { type: 'RUN' }
  /** The node's program exits with `code`. */
  | { type: 'EXIT'; node: string; code: number }
  /** The node is killed with SIGKILL (status 137): a failure. */
  | { type: 'KILL'; node: string }
  /** The node is killed with SIGPIPE (status 141): no failure for a node that feeds another. */
  | { type: 'SIGPIPE'; node: string }
  /** The clock moves to one millisecond short of the pending deadline (backoff or grace): nothing happens. */
  | { type: 'TICK'; ms: number }
  /** The clock moves to the pending deadline (backoff or grace): the timer fires. */
  | { type: 'ELAPSE'; ms: number }
  /** pipeline.stop({ graceMs }) */
  | { type: 'STOP'; graceMs: number }
  /** The node's program can no longer be started (its next spawn fails with ENOENT). */
  | { type: 'BREAK'; node: string }
  | { type: 'REPAIR'; node: string };

export interface NodeEnd {
  status: number;
  signal: 'SIGKILL' | 'SIGPIPE' | null;
}

export interface PipelineModelContext {
  labels: string[];
  /** Nodes that feed another node (a SIGPIPE ends them without a failure). */
  upstream: string[];
  discern: 'any' | 'last';
  policy: ModelPolicy;
  /** The nodes of the current attempt that ended, and how. */
  ended: Record<string, NodeEnd>;
  restarts: number;
  /** The node whose program cannot be started, if any. */
  broken: string | null;
  /** The clock is one ms short of the pending deadline. */
  ticked: boolean;
  /** The grace of the stop in progress. */
  graceMs: number | null;
  /** false once run() was refused (nothing started). */
  started: boolean;
}

export interface PipelineModelInput {
  labels: string[];
  upstream: string[];
  discern: 'any' | 'last';
  policy: PipelineModelContext['policy'];
}

export const nodeFailed = (c: PipelineModelContext, label: string): boolean => {
  const end = c.ended[label];
  if (!end || end.status === 0) return false;
  // `yes | head -1`: the writer killed by SIGPIPE because its reader finished did not fail.
  return !(end.signal === 'SIGPIPE' && c.upstream.includes(label));
};
export const pipelineFailed = (c: PipelineModelContext): boolean =>
  c.discern === 'last' ? nodeFailed(c, c.labels[c.labels.length - 1]!) : c.labels.some((label) => nodeFailed(c, label));
const allEnded = (c: PipelineModelContext): boolean => c.labels.every((label) => c.ended[label] !== undefined);

const alive = ({ context, event }: { context: PipelineModelContext; event: PipelineModelEvent }) =>
  'node' in event && context.labels.includes(event.node) && context.ended[event.node] === undefined;

function endOf(event: PipelineModelEvent): NodeEnd {
  switch (event.type) {
    case 'EXIT':
      return { status: event.code, signal: null };
    case 'KILL':
      return { status: 128 + 9, signal: 'SIGKILL' };
    case 'SIGPIPE':
      return { status: 128 + 13, signal: 'SIGPIPE' };
    default:
      throw new Error(`${event.type} ends no node`);
  }
}

/** Running or reaping, a node's end is judged and a stop is heard alike. */
const whileNodesRun = {
  EXIT: { guard: 'alive', target: 'judging', actions: 'recordEnd' },
  KILL: { guard: 'alive', target: 'judging', actions: 'recordEnd' },
  SIGPIPE: { guard: 'alive', target: 'judging', actions: 'recordEnd' },
  STOP: [{ guard: 'noGrace', target: 'stopped' }, { target: 'stopping', actions: 'noteGrace' }],
} as const;

/** The abstract pipeline model: plain states and guarded transitions, no invoke, no timers. */
export const pipelineModelMachine = setup({
  types: {
    context: {} as PipelineModelContext,
    events: {} as PipelineModelEvent,
    input: {} as PipelineModelInput,
  },
  guards: {
    alive,
    broken: ({ context }) => context.broken !== null,
    noGrace: ({ event }) => event.type === 'STOP' && event.graceMs === 0,
    lastAlive: ({ context, event }) =>
      alive({ context, event }) && context.labels.filter((label) => context.ended[label] === undefined).length === 1,
    restartsNow: ({ context }) => modelMayRestart(context) && modelBackoffMs(context) === 0,
    // Judged once an attempt's node ended: the documented rules, in order.
    endedFailedRestart: ({ context }) => allEnded(context) && pipelineFailed(context) && modelMayRestart(context),
    endedFailedSupervised: ({ context }) => allEnded(context) && pipelineFailed(context) && context.policy.onFailure,
    endedFailed: ({ context }) => allEnded(context) && pipelineFailed(context),
    ended: ({ context }) => allEnded(context),
    failedSoFar: ({ context }) => pipelineFailed(context),
    noDelay: ({ context }) => modelBackoffMs(context) === 0,
    brokenMayRestart: ({ context }) => context.broken !== null && modelMayRestart(context),
  },
  actions: {
    recordEnd: assign(({ context, event }) => ({ ended: { ...context.ended, [(event as { node: string }).node]: endOf(event) } })),
    tick: assign({ ticked: true }),
    untick: assign({ ticked: false }),
    noteGrace: assign(({ event }) => ({ graceMs: event.type === 'STOP' ? event.graceMs : null })),
    countRestart: assign(({ context }) => ({ restarts: context.restarts + 1 })),
    newAttempt: assign({ ended: {} }),
    breakNode: assign(({ event }) => ({ broken: 'node' in event ? event.node : null })),
    repair: assign({ broken: null }),
    refuse: assign({ started: false }),
  },
}).createMachine({
  id: 'pipelineModel',
  context: ({ input }) => ({
    ...input,
    ended: {},
    restarts: 0,
    broken: null,
    ticked: false,
    graceMs: null,
    started: true,
  }),
  initial: 'idle',
  states: {
    idle: {
      on: {
        RUN: [{ guard: 'broken', target: 'failed', actions: 'refuse' }, { target: 'running' }],
        BREAK: { actions: 'breakNode' },
      },
    },
    running: {
      on: whileNodesRun,
    },
    // Some node failed, others still run: the pipeline waits for them.
    reaping: {
      on: whileNodesRun,
    },
    judging: {
      always: [
        { guard: 'endedFailedRestart', target: 'backoff' },
        { guard: 'endedFailedSupervised', target: 'gaveUp' },
        { guard: 'endedFailed', target: 'failed' },
        { guard: 'ended', target: 'succeeded' },
        { guard: 'failedSoFar', target: 'reaping' },
        { target: 'running' },
      ],
    },
    backoff: {
      entry: 'untick',
      always: { guard: 'noDelay', target: 'relaunching' },
      on: {
        TICK: { actions: 'tick' },
        ELAPSE: 'relaunching',
        STOP: 'stopped',
        BREAK: { actions: 'breakNode' },
        REPAIR: { actions: 'repair' },
      },
    },
    // The whole pipeline starts again: every node, or none when one cannot start.
    relaunching: {
      entry: 'countRestart',
      always: [
        { guard: 'brokenMayRestart', target: 'backoff' },
        { guard: 'broken', target: 'gaveUp' },
        { target: 'running', actions: 'newAttempt' },
      ],
    },
    // Stopped with a grace: the puppets ignore SIGTERM, so they run until killed or they exit.
    stopping: {
      entry: 'untick',
      on: {
        EXIT: [
          { guard: 'lastAlive', target: 'stopped', actions: 'recordEnd' },
          { guard: 'alive', actions: 'recordEnd' },
        ],
        TICK: { actions: 'tick' },
        ELAPSE: 'stopped',
      },
    },
    succeeded: { type: 'final' },
    failed: { type: 'final' },
    gaveUp: { type: 'final' },
    stopped: { type: 'final' },
  },
});

export type PipelineModelSnapshot = SnapshotFrom<typeof pipelineModelMachine>;
