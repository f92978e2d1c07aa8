import { assign, getInitialSnapshot, getNextSnapshot, setup, type SnapshotFrom } from 'xstate';
import type { Pipeline, PipelineResult } from '../host/pipeline-handle.js';
import type { Runtime } from '../host/runtime.js';
import type { Workspace } from '../host/workspace-handle.js';
import { validatePipelineSpec, type PipelineSpec } from '../protocol/pipeline-spec.js';
import type { WorkspaceSpec } from '../protocol/specs.js';
import { resolveRestartPolicy } from '../protocol/validate-spec.js';
import type { ManualClock } from './manual-clock.js';
import { modelPaths, type ModelGraphInfo } from './model-paths.js';
import { ActorWatch, processAlive, stateName } from './model-watch.js';
import { PuppetStage, puppetReady, type Puppet } from './puppets.js';

// Model-based tests of a pipeline spec: an abstract model of what the pipeline actor should do
// (written from the documented rules, not from the machine's code), paths through it chosen with
// @xstate/graph, and a runner that drives a real runtime with real processes along one path,
// checking the real actor's state after every step. See docs/model-based-testing.md.
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
  policy: { onFailure: boolean; backoffMs: number; maxBackoffMs: number; maxRestarts: number };
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

const nodeFailed = (c: PipelineModelContext, label: string): boolean => {
  const end = c.ended[label];
  if (!end || end.status === 0) return false;
  // `yes | head -1`: the writer killed by SIGPIPE because its reader finished did not fail.
  return !(end.signal === 'SIGPIPE' && c.upstream.includes(label));
};
const pipelineFailed = (c: PipelineModelContext): boolean =>
  c.discern === 'last' ? nodeFailed(c, c.labels[c.labels.length - 1]!) : c.labels.some((label) => nodeFailed(c, label));
const allEnded = (c: PipelineModelContext): boolean => c.labels.every((label) => c.ended[label] !== undefined);
const mayRestart = (c: PipelineModelContext): boolean =>
  c.policy.onFailure && (c.policy.maxRestarts === 0 || c.restarts < c.policy.maxRestarts);

/** The delay before relaunch number `restarts + 1`: doubling from backoffMs up to maxBackoffMs. */
export function modelBackoffMs(c: Pick<PipelineModelContext, 'policy' | 'restarts'>): number {
  const { backoffMs, maxBackoffMs } = c.policy;
  return c.restarts === 0 ? backoffMs : Math.min(backoffMs * 2 ** c.restarts, maxBackoffMs);
}

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
    restartsNow: ({ context }) => mayRestart(context) && modelBackoffMs(context) === 0,
    // Judged once an attempt's node ended: the documented rules, in order.
    endedFailedRestart: ({ context }) => allEnded(context) && pipelineFailed(context) && mayRestart(context),
    endedFailedSupervised: ({ context }) => allEnded(context) && pipelineFailed(context) && context.policy.onFailure,
    endedFailed: ({ context }) => allEnded(context) && pipelineFailed(context),
    ended: ({ context }) => allEnded(context),
    failedSoFar: ({ context }) => pipelineFailed(context),
    noDelay: ({ context }) => modelBackoffMs(context) === 0,
    brokenMayRestart: ({ context }) => context.broken !== null && mayRestart(context),
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
      on: {
        EXIT: { guard: 'alive', target: 'judging', actions: 'recordEnd' },
        KILL: { guard: 'alive', target: 'judging', actions: 'recordEnd' },
        SIGPIPE: { guard: 'alive', target: 'judging', actions: 'recordEnd' },
        STOP: [{ guard: 'noGrace', target: 'stopped' }, { target: 'stopping', actions: 'noteGrace' }],
      },
    },
    // Some node failed, others still run: the pipeline waits for them.
    reaping: {
      on: {
        EXIT: { guard: 'alive', target: 'judging', actions: 'recordEnd' },
        KILL: { guard: 'alive', target: 'judging', actions: 'recordEnd' },
        SIGPIPE: { guard: 'alive', target: 'judging', actions: 'recordEnd' },
        STOP: [{ guard: 'noGrace', target: 'stopped' }, { target: 'stopping', actions: 'noteGrace' }],
      },
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
function pipelineModelKey(snapshot: PipelineModelSnapshot): string {
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
function pipelineCoverKey(snapshot: PipelineModelSnapshot): string {
  const c = snapshot.context;
  const running = c.labels.filter((label) => c.ended[label] === undefined).length;
  const timed = snapshot.value === 'backoff' || snapshot.value === 'stopping';
  return JSON.stringify([snapshot.value, c.restarts, c.broken, timed && c.ticked, c.started, running, pipelineFailed(c)]);
}

// ── paths ──────────────────────────────────────────────────────────────────────────────

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

// ── the runner ─────────────────────────────────────────────────────────────────────────

export interface RunPipelineModelOptions {
  /** The workspace each path runs in (a fresh one per path, stopped at the end). */
  workspace?: WorkspaceSpec;
  /** How long a step may take to show its expected state (default 10 000 ms). */
  timeoutMs?: number;
}

export interface PipelineModelRun {
  /** Per step: the states the real actor published on the way, in order. */
  steps: Array<{ event: PipelineModelEvent; expect: PipelineExpectation; seen: string[] }>;
  /** The pipeline's result, when the path ended it. */
  result: PipelineResult | null;
  /** Every process the path started (all gone when the run returned). */
  pids: number[];
}

/** States the real actor may pass through while a step's event takes effect. */
function passing(event: PipelineModelEvent, from: string, to: string): Set<string> {
  const allowed = new Set([from, to]);
  if (event.type === 'RUN') allowed.add('created');
  if (event.type === 'ELAPSE' && from === 'backoff') allowed.add('restarting');
  if (to === 'stopped' && (event.type === 'STOP' || from.startsWith('stopping'))) {
    allowed.add('stopping.terminating');
    allowed.add('stopping.killing');
  }
  return allowed;
}

function actual(snapshot: { value: unknown; context: Record<string, unknown> } | null): string {
  if (!snapshot) return 'no snapshot';
  const c = snapshot.context as { restarts?: number; exits?: Record<string, { status: number }>; backoffDeadline?: number | null; stampedAt?: number };
  const exits = Object.fromEntries(Object.entries(c.exits ?? {}).map(([label, exit]) => [label, exit.status]));
  const backoff = typeof c.backoffDeadline === 'number' && typeof c.stampedAt === 'number' ? c.backoffDeadline - c.stampedAt : null;
  return JSON.stringify({ state: stateName(snapshot.value as never), restarts: c.restarts, exits, backoffMs: backoff });
}

function matches(expect: PipelineExpectation, snapshot: { value: unknown; context: Record<string, unknown> } | null): boolean {
  if (!snapshot || stateName(snapshot.value as never) !== expect.state) return false;
  const c = snapshot.context as { restarts?: number; exits?: Record<string, { status: number }>; backoffDeadline?: number | null; stampedAt?: number };
  if (c.restarts !== expect.restarts) return false;
  if (expect.exits) {
    const exits = c.exits ?? {};
    const labels = Object.keys(exits);
    if (labels.length !== Object.keys(expect.exits).length) return false;
    if (!labels.every((label) => exits[label]!.status === expect.exits![label])) return false;
  }
  if (expect.backoffMs !== null && (c.backoffDeadline ?? NaN) - (c.stampedAt ?? NaN) !== expect.backoffMs) return false;
  return true;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const FINAL = new Set(['succeeded', 'failed', 'gaveUp', 'stopped']);

/**
 * Drives `rt` along one model path with real processes (puppets in place of the nodes'
 * programs) and checks the pipeline actor after every step: its state, restarts, the exit
 * status of every node that ended, the backoff armed; every state it published on the way must
 * be one the step allows. `rt` must run on `clock` (`createRuntime({ clock })`), and nothing
 * else may move that clock meanwhile. Rejects with the step, what was expected and what the actor
 * showed. Every process the path started is gone when it settles.
 */
export async function runPipelineModelPath(
  rt: Runtime,
  clock: ManualClock,
  spec: PipelineSpec,
  path: PipelineModelPath,
  options: RunPipelineModelOptions = {},
): Promise<PipelineModelRun> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const checked = validatePipelineSpec(structuredClone(spec));
  const stage = await PuppetStage.create('shuma-model-');
  const pids = new Set<number>();
  const run: PipelineModelRun = { steps: [], result: null, pids: [] };
  let watch: ActorWatch | null = null;
  let pipeline: Pipeline | null = null;
  const pending: Array<Promise<unknown>> = [];
  let failure: unknown = null;
  let ws: Workspace;
  try {
    ws = await rt.createWorkspace(options.workspace ?? { label: `model ${checked.label}` });
  } catch (error) {
    await stage.close();
    throw error;
  }
  try {
    const puppets = new Map<string, Puppet>();
    for (const [i, node] of checked.nodes.entries()) puppets.set(node.label, await stage.puppet(`node${i}`));
    const puppetSpec: PipelineSpec = {
      ...checked,
      workspace: ws.id,
      nodes: checked.nodes.map((node) => ({ label: node.label, exec: puppets.get(node.label)!.exec, argv: puppets.get(node.label)!.argv })),
    };
    const puppet = (label: string) => {
      const found = puppets.get(label);
      if (!found) throw new Error(`the path names a node '${label}' that the spec does not have`);
      return found;
    };
    const pidOf = (label: string) => {
      const node = pipeline?.nodes.find((n) => n.label === label);
      if (!node) throw new Error(`node '${label}' has no process in the current attempt`);
      return node.pid;
    };
    const ready = new Set<number>();
    // Every process of the current attempt is past its `trap` before the test acts again.
    const settle = async () => {
      for (const node of pipeline?.nodes ?? []) {
        pids.add(node.pid);
        if (!ready.has(node.pid)) {
          await puppetReady(node.pid, timeoutMs);
          ready.add(node.pid);
        }
      }
    };

    let previous: PipelineExpectation = { state: '', started: true, restarts: 0, exits: null, backoffMs: null };
    for (const [index, step] of path.steps.entries()) {
      const where = () => `step ${index + 1} of [${path.name}] (${describeModelEvent(step.event)})`;
      if (watch) {
        // The actor stayed where the previous step left it.
        const between = watch.takeSeen().filter((state) => state !== previous.state);
        if (between.length > 0 || !matches(previous, watch.snapshot as never)) {
          throw new Error(`before ${where()}: the actor left ${previous.state} on its own: saw ${between.join(' → ')}, now ${actual(watch.snapshot as never)}`);
        }
      }
      const { event, expect } = step;
      switch (event.type) {
        case 'RUN':
          try {
            pipeline = await rt.runPipeline(puppetSpec);
          } catch (error) {
            if (expect.started) throw error;
            const code = (error as { code?: unknown }).code;
            if (code !== 'SPAWN_FAILED') throw new Error(`${where()}: run() failed with ${String(code)}, expected SPAWN_FAILED`);
            run.steps.push({ event, expect, seen: [] });
            previous = expect;
            continue;
          }
          if (!expect.started) throw new Error(`${where()}: run() started the pipeline; the model expected it refused`);
          watch = new ActorWatch(pipeline);
          break;
        case 'EXIT':
          puppet(event.node).exit(event.code);
          break;
        case 'KILL':
          process.kill(pidOf(event.node), 'SIGKILL');
          break;
        case 'SIGPIPE':
          process.kill(pidOf(event.node), 'SIGPIPE');
          break;
        case 'TICK':
        case 'ELAPSE':
          await clock.advance(event.ms);
          break;
        case 'STOP':
          if (!pipeline) throw new Error(`${where()}: no pipeline to stop`);
          pending.push(pipeline.stop({ graceMs: event.graceMs }));
          break;
        case 'BREAK':
          await puppet(event.node).break();
          break;
        case 'REPAIR':
          await puppet(event.node).repair();
          break;
      }
      if (!watch) {
        // Before the run there is no actor to watch: only the programs can change.
        if (event.type !== 'BREAK' && event.type !== 'REPAIR') throw new Error(`${where()}: no pipeline yet: RUN first`);
        run.steps.push({ event, expect, seen: [] });
        previous = expect;
        continue;
      }
      const w = watch;
      await w.until(
        (snapshot) => matches(expect, snapshot as never),
        () => `${where()}: expected ${JSON.stringify(expect)}; the actor shows ${actual(w.snapshot as never)}`,
        timeoutMs,
      );
      await settle();
      const seen = w.takeSeen();
      const allowed = passing(event, previous.state, expect.state);
      const stray = seen.filter((state) => !allowed.has(state));
      if (stray.length > 0) {
        throw new Error(`${where()}: on the way from ${previous.state || 'nothing'} to ${expect.state} the actor passed ${stray.join(', ')} (saw ${seen.join(' → ')})`);
      }
      run.steps.push({ event, expect, seen });
      previous = expect;
      if (FINAL.has(expect.state) && pipeline) {
        const result = await withTimeout(pipeline.done, timeoutMs, `${where()}: pipeline.done`);
        run.result = result;
        if (result.state !== expect.state || result.restarts !== expect.restarts || result.ok !== (expect.state === 'succeeded')) {
          throw new Error(`${where()}: pipeline.done gave ${JSON.stringify(result)}; expected state ${expect.state}, restarts ${expect.restarts}`);
        }
      }
    }
  } catch (error) {
    failure = error;
  } finally {
    watch?.close();
    // Whatever the path left running goes with its workspace.
    try {
      if (rt.workspace(ws.id)) await withTimeout(ws.stop({ graceMs: 0 }), timeoutMs, 'the workspace to stop');
      await withTimeout(Promise.allSettled(pending), timeoutMs, 'the stops of the path');
    } catch (error) {
      failure ??= error;
    }
    await stage.close();
  }
  if (failure) throw failure;
  run.pids = [...pids];
  for (const pid of run.pids) {
    if (await processAlive(pid)) throw new Error(`process ${pid} of [${path.name}] is still alive after its workspace stopped`);
  }
  return run;
}
