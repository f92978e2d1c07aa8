// Model-based tests: for the workspace, command and pipeline machines, paths generated with
// @xstate/graph from small abstract model machines (createTestModel refuses the real machines:
// they use `invoke`/`after`), driven on the REAL runtime with REAL processes, the real actor's
// state checked after every step. docs/model-based-testing.md explains the models and how they
// map to the machines.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { assign, setup, type SnapshotFrom } from 'xstate';
import type { ActorSnapshot, Command, InspectionRecord, Runtime, Workspace } from '../src/index.js';
import {
  ActorWatch,
  ManualClock,
  PuppetStage,
  modelPaths,
  pipelineModelPath,
  pipelineModelPaths,
  puppetReady,
  runPipelineModelPath,
  stateName,
  type ModelGraphInfo,
  type Puppet,
} from '../src/testing/index.js';
import { modelBackoffMs, modelMayRestart, type ModelPolicy } from '../src/testing/model-policy.js';
import { isAlive, startRuntime } from './helpers.js';

const TIMEOUT_MS = 10_000;
/** The slow lane (`npm run test:slow`) runs every path the coverage asks for, uncapped. */
const FULL = Boolean(process.env.SHUMA_SLOW);
const cap = (n: number) => (FULL ? Number.POSITIVE_INFINITY : n);

function withTimeout<T>(promise: Promise<T>, what: string, ms = TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** What one real actor must show after a step, and which states it may pass on the way. */
interface Probe {
  name: string;
  watch: ActorWatch;
  matches: (snapshot: ActorSnapshot | null) => boolean;
  state: string;
  /** States allowed in passing, besides the one before and the one expected. */
  via: string[];
}

/** Between two steps nothing may happen: the actor still shows what the last step expected. */
function checkStayed(where: string, probe: Probe): void {
  const moved = probe.watch.takeSeen().filter((state) => state !== probe.state);
  assert.ok(
    moved.length === 0 && probe.matches(probe.watch.snapshot),
    `${where}: the ${probe.name} actor left ${probe.state} on its own (saw ${moved.join(' → ')}; now ${show(probe.watch.snapshot)})`,
  );
}

/** Waits until the actor matches; every state it published meanwhile must be allowed. */
async function expectProbe(where: string, probe: Probe, from: string, expected: string): Promise<string[]> {
  await probe.watch.until(probe.matches, () => `${where}: the ${probe.name} actor should be ${expected}; it shows ${show(probe.watch.snapshot)}`, TIMEOUT_MS);
  const seen = probe.watch.takeSeen();
  const allowed = new Set([from, probe.state, ...probe.via]);
  const stray = seen.filter((state) => !allowed.has(state));
  assert.deepEqual(stray, [], `${where}: the ${probe.name} actor passed states the model does not allow (saw ${seen.join(' → ')})`);
  return seen;
}

function show(snapshot: ActorSnapshot | null): string {
  if (!snapshot) return 'no snapshot';
  return `${stateName(snapshot.value)} ${JSON.stringify(snapshot.context)}`;
}

function summary(info: ModelGraphInfo, paths: number): string {
  const abstract = info.abstractStates === info.states ? '' : ` (abstract: ${info.abstractStates} / ${info.abstractTransitions})`;
  return (
    `${paths} paths; model ${info.states} states / ${info.transitions} transitions${abstract}; ` +
    `covered ${info.coveredStates} states, ${info.coveredTransitions} transitions${info.simple ? '; simple paths included' : ''}`
  );
}

/** Stops what a path left running and checks that every process it started is gone. */
async function cleanUp(rt: Runtime, ws: Workspace, pending: Array<Promise<unknown>>, stage: PuppetStage, pids: Iterable<number>): Promise<void> {
  try {
    if (rt.workspace(ws.id)) await withTimeout(ws.stop({ graceMs: 0 }), 'the workspace to stop');
    await withTimeout(Promise.allSettled(pending), 'the stops of the path');
  } finally {
    await stage.close();
  }
  for (const pid of pids) assert.equal(isAlive(pid), false, `process ${pid} is still alive after its path`);
}

// ── the command machine ─────────────────────────────────────────────────────────────────
//
// Model states: idle (before ws.run) → running ⇄ backoff → … exited | gaveUp | failed | stopped,
// and stopping (the workspace stops; the program ignores SIGTERM until its grace is over).
// `starting` and `restarting` are not in the model: there the real actor waits for the host's
// answer to a spawn, which no test can hold back; a step may pass through them.

type CommandModelEvent =
  | { type: 'RUN' }
  | { type: 'BREAK' }
  | { type: 'REPAIR' }
  | { type: 'EXIT'; code: number }
  | { type: 'KILL' }
  | { type: 'TICK'; ms: number }
  | { type: 'ELAPSE'; ms: number }
  | { type: 'STOP'; graceMs: number };

interface CommandModelContext {
  policy: ModelPolicy;
  restarts: number;
  /** The program cannot be started (its next exec fails with ENOENT). */
  broken: boolean;
  ticked: boolean;
  graceMs: number;
  lastStatus: number | null;
  started: boolean;
  ws: 'running' | 'reaping.terminating' | 'stopped';
}

const commandModel = setup({
  types: { context: {} as CommandModelContext, events: {} as CommandModelEvent, input: {} as ModelPolicy },
  guards: {
    broken: ({ context }) => context.broken,
    exitZero: ({ event }) => event.type === 'EXIT' && event.code === 0,
    mayRestart: ({ context }) => modelMayRestart(context),
    supervised: ({ context }) => context.policy.onFailure,
    noDelay: ({ context }) => modelBackoffMs(context) === 0,
    noGrace: ({ event }) => event.type === 'STOP' && event.graceMs === 0,
    brokenMayRestart: ({ context }) => context.broken && modelMayRestart(context),
  },
  actions: {
    recordExit: assign(({ event }) => ({ lastStatus: event.type === 'EXIT' ? event.code : 128 + 9 })),
    killed: assign({ lastStatus: 128 + 9 }),
    wsStopping: assign(({ event }) => ({ ws: 'reaping.terminating' as const, graceMs: event.type === 'STOP' ? event.graceMs : 0 })),
    wsStopped: assign({ ws: 'stopped' as const }),
    tick: assign({ ticked: true }),
    untick: assign({ ticked: false }),
    countRestart: assign(({ context }) => ({ restarts: context.restarts + 1 })),
    breakProgram: assign({ broken: true }),
    repairProgram: assign({ broken: false }),
    refuse: assign({ started: false }),
  },
}).createMachine({
  id: 'commandModel',
  context: ({ input }) => ({ policy: input, restarts: 0, broken: false, ticked: false, graceMs: 0, lastStatus: null, started: true, ws: 'running' }),
  initial: 'idle',
  states: {
    idle: {
      on: {
        RUN: [{ guard: 'broken', target: 'failed', actions: 'refuse' }, { target: 'running' }],
        BREAK: { actions: 'breakProgram' },
      },
    },
    running: {
      on: {
        EXIT: [{ guard: 'exitZero', target: 'exited', actions: 'recordExit' }, { target: 'judging', actions: 'recordExit' }],
        KILL: { target: 'judging', actions: 'recordExit' },
        STOP: [
          { guard: 'noGrace', target: 'stopped', actions: ['killed', 'wsStopped'] },
          { target: 'stopping', actions: 'wsStopping' },
        ],
      },
    },
    judging: {
      always: [{ guard: 'mayRestart', target: 'backoff' }, { guard: 'supervised', target: 'gaveUp' }, { target: 'exited' }],
    },
    backoff: {
      entry: 'untick',
      always: { guard: 'noDelay', target: 'relaunching' },
      on: {
        TICK: { actions: 'tick' },
        ELAPSE: 'relaunching',
        STOP: { target: 'stopped', actions: 'wsStopped' },
        BREAK: { actions: 'breakProgram' },
        REPAIR: { actions: 'repairProgram' },
      },
    },
    relaunching: {
      entry: 'countRestart',
      always: [{ guard: 'brokenMayRestart', target: 'backoff' }, { guard: 'broken', target: 'gaveUp' }, { target: 'running' }],
    },
    stopping: {
      entry: 'untick',
      on: {
        EXIT: { target: 'stopped', actions: ['recordExit', 'wsStopped'] },
        TICK: { actions: 'tick' },
        ELAPSE: { target: 'stopped', actions: ['killed', 'wsStopped'] },
      },
    },
    exited: { type: 'final' },
    gaveUp: { type: 'final' },
    failed: { type: 'final' },
    stopped: { type: 'final' },
  },
});

type CommandModelSnapshot = SnapshotFrom<typeof commandModel>;

function commandEvents(snapshot: CommandModelSnapshot): CommandModelEvent[] {
  const c = snapshot.context;
  // With unlimited restarts, two relaunches show the doubling; the graph stays finite.
  const depth = c.policy.maxRestarts > 0 ? c.policy.maxRestarts : 2;
  switch (snapshot.value) {
    case 'idle':
      return c.broken ? [{ type: 'RUN' }] : [{ type: 'RUN' }, { type: 'BREAK' }];
    case 'running':
      return [{ type: 'EXIT', code: 0 }, { type: 'EXIT', code: 1 }, { type: 'KILL' }, { type: 'STOP', graceMs: 1000 }, { type: 'STOP', graceMs: 0 }];
    case 'backoff': {
      const delay = modelBackoffMs(c);
      const events: CommandModelEvent[] = [];
      if (c.restarts < depth) events.push({ type: 'ELAPSE', ms: c.ticked ? 1 : delay });
      if (!c.ticked && delay >= 2) events.push({ type: 'TICK', ms: delay - 1 });
      events.push({ type: 'STOP', graceMs: 1000 }, c.broken ? { type: 'REPAIR' } : { type: 'BREAK' });
      return events;
    }
    case 'stopping':
      return [{ type: 'EXIT', code: 0 }, ...(c.ticked ? [] : [{ type: 'TICK' as const, ms: c.graceMs - 1 }]), { type: 'ELAPSE', ms: c.ticked ? 1 : c.graceMs }];
    default:
      return [];
  }
}

function describeCommandEvent(event: CommandModelEvent): string {
  switch (event.type) {
    case 'EXIT':
      return `EXIT ${event.code}`;
    case 'TICK':
    case 'ELAPSE':
      return `${event.type} ${event.ms} ms`;
    case 'STOP':
      return `STOP grace ${event.graceMs} ms`;
    default:
      return event.type;
  }
}

interface CommandExpect {
  state: string;
  started: boolean;
  restarts: number;
  lastStatus: number | null;
  backoffMs: number | null;
  ws: string;
}

function commandExpect(snapshot: CommandModelSnapshot): CommandExpect {
  const c = snapshot.context;
  const state = String(snapshot.value);
  return {
    state: state === 'idle' ? '' : state,
    started: c.started,
    restarts: c.restarts,
    lastStatus: c.lastStatus,
    backoffMs: state === 'backoff' ? modelBackoffMs(c) : null,
    ws: c.ws,
  };
}

function commandMatches(expect: CommandExpect, snapshot: ActorSnapshot | null): boolean {
  if (!snapshot || stateName(snapshot.value) !== expect.state) return false;
  const c = snapshot.context as { restarts?: number; lastExit?: { status: number } | null; backoffDeadline?: number | null; stampedAt?: number };
  if (c.restarts !== expect.restarts) return false;
  if ((c.lastExit?.status ?? null) !== expect.lastStatus) return false;
  if (expect.backoffMs !== null && (c.backoffDeadline ?? NaN) - (c.stampedAt ?? NaN) !== expect.backoffMs) return false;
  return true;
}

interface CommandModelPath {
  name: string;
  steps: Array<{ event: CommandModelEvent; expect: CommandExpect }>;
}

function commandPaths(policy: ModelPolicy, options: { simplePaths?: number; maxPaths?: number }) {
  const { paths, info } = modelPaths(commandModel, {
    input: policy,
    events: commandEvents,
    simplePaths: options.simplePaths ?? 0,
    ...(options.maxPaths !== undefined ? { maxPaths: options.maxPaths } : {}),
  });
  const named: CommandModelPath[] = paths.map((path) => ({
    name: path.steps.map((step) => describeCommandEvent(step.event)).join(' → '),
    steps: path.steps.map((step) => ({ event: step.event, expect: commandExpect(step.snapshot) })),
  }));
  return { paths: named, info };
}

async function runCommandPath(rt: Runtime, clock: ManualClock, policy: ModelPolicy, path: CommandModelPath): Promise<void> {
  const stage = await PuppetStage.create('shuma-mbt-command-');
  const ws = await rt.createWorkspace({ label: 'mbt command' });
  const wsWatch = new ActorWatch(ws);
  const pending: Array<Promise<unknown>> = [];
  const pids = new Set<number>();
  let cmd: Command | null = null;
  let watch: ActorWatch | null = null;
  try {
    const puppet = await stage.puppet('command');
    const spec = { exec: puppet.exec, argv: puppet.argv, label: 'puppet', restart: policy };
    let previous: CommandExpect = { state: '', started: true, restarts: 0, lastStatus: null, backoffMs: null, ws: 'running' };
    const wsProbe = (expect: CommandExpect): Probe => ({
      name: 'workspace',
      watch: wsWatch,
      state: expect.ws,
      matches: (s) => stateName(s?.value) === expect.ws,
      via: expect.ws === 'stopped' ? ['reaping.terminating', 'reaping.killing'] : [],
    });
    for (const [index, { event, expect }] of path.steps.entries()) {
      const where = `step ${index + 1} (${describeCommandEvent(event)}) of [${path.name}]`;
      const cmdProbe = (e: CommandExpect): Probe | null =>
        watch && {
          name: 'command',
          watch,
          state: e.state,
          matches: (s) => commandMatches(e, s),
          via: [
            ...(event.type === 'RUN' ? ['starting'] : []),
            ...(event.type === 'ELAPSE' && previous.state === 'backoff' ? ['restarting'] : []),
            // A zero backoff relaunches in the same step as the failure.
            ...(policy.backoffMs === 0 && (event.type === 'EXIT' || event.type === 'KILL' || event.type === 'ELAPSE') ? ['backoff', 'restarting'] : []),
            ...(e.state === 'stopped' ? ['stopping'] : []),
          ],
        };
      const before = cmdProbe(previous);
      if (before) checkStayed(where, before);
      checkStayed(where, wsProbe(previous));
      switch (event.type) {
        case 'RUN':
          if (expect.started) {
            cmd = await ws.run(spec);
            watch = new ActorWatch(cmd);
          } else {
            // The first spawn fails: run() rejects, and no handle exists; the inspection stream
            // still shows the command actor reaching `failed`.
            let off: () => void = () => undefined;
            const failed = new Promise<void>((resolve) => {
              off = rt.inspect((record: InspectionRecord) => {
                if (record.rootId === ws.id && record.machine === 'command' && record.kind === 'snapshot' && stateName(record.snapshot?.value) === 'failed') resolve();
              });
            });
            try {
              await assert.rejects(ws.run(spec), { code: 'SPAWN_FAILED' }, `${where}: run() of a program that cannot start`);
              await withTimeout(failed, `${where}: the command actor in failed`);
            } finally {
              off();
            }
          }
          break;
        case 'BREAK':
          await puppet.break();
          break;
        case 'REPAIR':
          await puppet.repair();
          break;
        case 'EXIT':
          puppet.exit(event.code);
          break;
        case 'KILL': {
          const pid: unknown = cmd?.getSnapshot()?.context.pid;
          assert.equal(typeof pid, 'number', `${where}: a running command has a pid`);
          process.kill(pid as number, 'SIGKILL');
          break;
        }
        case 'TICK':
        case 'ELAPSE':
          await clock.advance(event.ms);
          break;
        case 'STOP':
          pending.push(ws.stop({ graceMs: event.graceMs }));
          break;
      }
      const after = cmdProbe(expect);
      if (after) await expectProbe(where, after, previous.state, expect.state);
      await expectProbe(where, wsProbe(expect), previous.ws, expect.ws);
      if (after) assert.ok(after.matches(after.watch.snapshot), `${where}: the command actor moved on while its workspace caught up: ${show(after.watch.snapshot)}`);
      // The program of a new run is past its `trap` before the test acts on it again.
      const pid: unknown = cmd?.getSnapshot()?.context.pid;
      if (typeof pid === 'number' && expect.state === 'running' && !pids.has(pid)) {
        pids.add(pid);
        await puppetReady(pid, TIMEOUT_MS);
      }
      previous = expect;
    }
    if (watch && ['exited', 'gaveUp', 'stopped'].includes(previous.state)) {
      assert.equal(watch.snapshot?.status, 'done', `${path.name}: the command actor is done`);
    }
  } finally {
    watch?.close();
    wsWatch.close();
    for (const run of (await ws.commands().catch(() => [])) ?? []) pids.add(run.pid);
    await cleanUp(rt, ws, pending, stage, pids);
  }
}

const COMMAND_MODELS: Array<{ name: string; policy: ModelPolicy; simplePaths?: number; maxPaths?: number }> = [
  // One-shot: small enough for every simple path.
  { name: 'one-shot (no restart policy)', policy: { onFailure: false, backoffMs: 200, maxBackoffMs: 30_000, maxRestarts: 0 }, simplePaths: 16 },
  // Backoff 100 then 150 (capped), give up after 2 relaunches.
  { name: 'supervised, maxRestarts 2', policy: { onFailure: true, backoffMs: 100, maxBackoffMs: 150, maxRestarts: 2 }, maxPaths: cap(40) },
  // Zero backoff: the relaunch happens in the step of the failure.
  { name: 'supervised, zero backoff, maxRestarts 1', policy: { onFailure: true, backoffMs: 0, maxBackoffMs: 0, maxRestarts: 1 }, simplePaths: 16 },
];

describe('model-based: command machine', () => {
  const clock = new ManualClock();
  let rt: Runtime;
  before(async () => {
    rt = await startRuntime({ clock, statsIntervalMs: 0 });
  });
  for (const model of COMMAND_MODELS) {
    const { paths, info } = commandPaths(model.policy, model);
    describe(`${model.name}: ${summary(info, paths.length)}`, () => {
      for (const path of paths) test(path.name, () => runCommandPath(rt, clock, model.policy, path));
    });
  }
});

// ── the workspace machine ───────────────────────────────────────────────────────────────
//
// Model states: running (with s commands that ignore SIGTERM and o that do not), terminating
// (a stop or the TTL sent SIGTERM; what ignores it runs until the grace is over), stopped (with
// its reason: requested, ttl or quota). `reaping.killing` is not in the model: there the real
// actor waits only for SIGKILL to take effect.

const WS_TTL_MS = 60_000;
const WS_GRACE_MS = 1000; // a stop's grace here, and the grace of a TTL stop (DEFAULT_GRACE_MS)
const WS_NPROC = 2;

type WorkspaceModelEvent =
  | { type: 'RUN_STUBBORN' }
  | { type: 'RUN_OBEDIENT' }
  | { type: 'END_STUBBORN' }
  | { type: 'END_OBEDIENT' }
  | { type: 'STOP'; graceMs: number }
  | { type: 'TICK'; ms: number }
  | { type: 'ELAPSE'; ms: number }
  | { type: 'SAMPLE' };

interface WorkspaceModelContext {
  /** Commands alive that ignore SIGTERM. */
  stubborn: number;
  /** Commands alive that SIGTERM ends. */
  obedient: number;
  reason: 'requested' | 'ttl' | 'quota' | null;
  /** In terminating: ms until SIGKILL. In running: ms until the TTL. */
  left: number;
  /** A stop that would not shorten the grace was asked (and ignored). */
  ignoredStop: boolean;
  /** A quota sample found no breach. */
  sampled: boolean;
}

const workspaceModel = setup({
  types: { context: {} as WorkspaceModelContext, events: {} as WorkspaceModelEvent },
  guards: {
    noGrace: ({ event }) => event.type === 'STOP' && event.graceMs === 0,
    hasStubborn: ({ context }) => context.stubborn > 0,
    lastStubborn: ({ context }) => context.stubborn === 1,
    shortens: ({ context, event }) => event.type === 'STOP' && event.graceMs < context.left,
    deadline: ({ context, event }) => (event.type === 'ELAPSE' || event.type === 'TICK') && event.ms >= context.left,
    breach: ({ context }) => context.stubborn + context.obedient > WS_NPROC,
  },
  actions: {
    // SIGTERM: what does not ignore it ends.
    terminate: assign(({ event }) => ({
      obedient: 0,
      reason: event.type === 'STOP' ? ('requested' as const) : ('ttl' as const),
      left: event.type === 'STOP' ? event.graceMs : WS_GRACE_MS,
    })),
    stopNow: assign(({ event }) => ({
      stubborn: 0,
      obedient: 0,
      reason: event.type === 'SAMPLE' ? ('quota' as const) : ('requested' as const),
    })),
    allEnded: assign({ stubborn: 0, obedient: 0 }),
    requested: assign({ reason: 'requested' as const }),
    shorten: assign(({ event }) => ({ left: event.type === 'STOP' ? event.graceMs : 0, ignoredStop: false })),
    pass: assign(({ context, event }) => ({ left: context.left - (event.type === 'TICK' || event.type === 'ELAPSE' ? event.ms : 0) })),
  },
}).createMachine({
  id: 'workspaceModel',
  context: { stubborn: 0, obedient: 0, reason: null, left: WS_TTL_MS, ignoredStop: false, sampled: false },
  initial: 'running',
  states: {
    running: {
      on: {
        RUN_STUBBORN: { actions: assign(({ context }) => ({ stubborn: context.stubborn + 1, sampled: false })) },
        RUN_OBEDIENT: { actions: assign(({ context }) => ({ obedient: context.obedient + 1, sampled: false })) },
        END_STUBBORN: { actions: assign(({ context }) => ({ stubborn: context.stubborn - 1 })) },
        END_OBEDIENT: { actions: assign(({ context }) => ({ obedient: context.obedient - 1 })) },
        STOP: [
          { guard: 'noGrace', target: 'stopped', actions: 'stopNow' },
          { guard: 'hasStubborn', target: 'terminating', actions: 'terminate' },
          { target: 'stopped', actions: ['terminate', 'allEnded'] },
        ],
        // The clock reaches the TTL: a stop with the default grace.
        ELAPSE: [
          { guard: 'deadline', target: 'judgingTtl', actions: 'terminate' },
          { actions: 'pass' },
        ],
        TICK: { actions: 'pass' },
        SAMPLE: [{ guard: 'breach', target: 'stopped', actions: 'stopNow' }, { actions: assign({ sampled: true }) }],
      },
    },
    judgingTtl: {
      always: [{ guard: 'hasStubborn', target: 'terminating' }, { target: 'stopped', actions: 'allEnded' }],
    },
    terminating: {
      on: {
        END_STUBBORN: [
          { guard: 'lastStubborn', target: 'stopped', actions: 'allEnded' },
          { actions: assign(({ context }) => ({ stubborn: context.stubborn - 1 })) },
        ],
        // A stop that shortens the grace becomes the reason (the machine's noteStop); one that
        // would lengthen it changes nothing.
        STOP: [
          { guard: 'noGrace', target: 'stopped', actions: ['allEnded', 'requested'] },
          { guard: 'shortens', actions: ['shorten', 'requested'] },
          { actions: assign({ ignoredStop: true }) },
        ],
        TICK: { actions: 'pass' },
        ELAPSE: { target: 'stopped', actions: 'allEnded' },
      },
    },
    stopped: { type: 'final' },
  },
});

type WorkspaceModelSnapshot = SnapshotFrom<typeof workspaceModel>;

function workspaceEvents(snapshot: WorkspaceModelSnapshot): WorkspaceModelEvent[] {
  const c = snapshot.context;
  const events: WorkspaceModelEvent[] = [];
  switch (snapshot.value) {
    case 'running':
      if (c.stubborn < 2) events.push({ type: 'RUN_STUBBORN' });
      if (c.obedient < 1) events.push({ type: 'RUN_OBEDIENT' });
      if (c.stubborn > 0) events.push({ type: 'END_STUBBORN' });
      if (c.obedient > 0) events.push({ type: 'END_OBEDIENT' });
      events.push({ type: 'STOP', graceMs: WS_GRACE_MS }, { type: 'STOP', graceMs: 0 });
      if (c.left > 1) events.push({ type: 'TICK', ms: c.left - 1 });
      events.push({ type: 'ELAPSE', ms: c.left });
      if (!c.sampled) events.push({ type: 'SAMPLE' });
      break;
    case 'terminating':
      if (c.stubborn > 0) events.push({ type: 'END_STUBBORN' });
      events.push({ type: 'STOP', graceMs: 0 });
      // Shorter than what is left, then (once) longer: the grace may shrink, never grow.
      if (c.left > 400) events.push({ type: 'STOP', graceMs: 400 });
      if (!c.ignoredStop) events.push({ type: 'STOP', graceMs: 5000 });
      if (c.left > 1) events.push({ type: 'TICK', ms: c.left - 1 });
      events.push({ type: 'ELAPSE', ms: c.left });
      break;
  }
  return events;
}

function describeWorkspaceEvent(event: WorkspaceModelEvent): string {
  switch (event.type) {
    case 'STOP':
      return `STOP grace ${event.graceMs} ms`;
    case 'TICK':
    case 'ELAPSE':
      return `${event.type} ${event.ms} ms`;
    default:
      return event.type;
  }
}

interface WorkspaceExpect {
  state: string;
  alive: number | null;
  reason: string | null;
  /** In terminating: ms from now until SIGKILL (graceDeadline − now). */
  graceLeft: number | null;
}

function workspaceExpect(snapshot: WorkspaceModelSnapshot): WorkspaceExpect {
  const c = snapshot.context;
  const state = snapshot.value === 'terminating' ? 'reaping.terminating' : String(snapshot.value);
  return {
    state,
    alive: state === 'stopped' ? null : c.stubborn + c.obedient,
    reason: c.reason,
    graceLeft: snapshot.value === 'terminating' ? c.left : null,
  };
}

interface WorkspaceModelPath {
  name: string;
  steps: Array<{ event: WorkspaceModelEvent; expect: WorkspaceExpect }>;
}

function workspacePaths(maxPaths: number) {
  const { paths, info } = modelPaths(workspaceModel, {
    events: workspaceEvents,
    // The TTL countdown is the clock, not a state: only whether it was ticked to 1 ms short.
    key: (s) => JSON.stringify([s.value, { ...s.context, left: s.value === 'running' ? s.context.left === 1 : s.context.left }]),
    maxPaths,
  });
  const named: WorkspaceModelPath[] = paths.map((path) => ({
    name: path.steps.map((step) => describeWorkspaceEvent(step.event)).join(' → '),
    steps: path.steps.map((step) => ({ event: step.event, expect: workspaceExpect(step.snapshot) })),
  }));
  return { paths: named, info };
}

async function runWorkspacePath(rt: Runtime, clock: ManualClock, path: WorkspaceModelPath): Promise<void> {
  const stage = await PuppetStage.create('shuma-mbt-workspace-');
  const ws = await rt.createWorkspace({ label: 'mbt workspace', ttlMs: WS_TTL_MS, limits: { nproc: WS_NPROC }, quota: { nproc: 'kill' } });
  const watch = new ActorWatch(ws);
  const pending: Array<Promise<unknown>> = [];
  const pids = new Set<number>();
  const stubborn: Array<{ puppet: Puppet; cmd: Command }> = [];
  const obedient: Array<{ puppet: Puppet; cmd: Command }> = [];
  const ended: Array<Promise<unknown>> = [];
  let puppets = 0;
  try {
    let previous: WorkspaceExpect = { state: 'running', alive: 0, reason: null, graceLeft: null };
    const probe = (expect: WorkspaceExpect, via: string[]): Probe => ({
      name: 'workspace',
      watch,
      state: expect.state,
      matches: (s) => {
        if (stateName(s?.value) !== expect.state) return false;
        const c = s!.context as { stopReason?: string | null; graceDeadline?: number | null };
        if ((c.stopReason ?? null) !== expect.reason) return false;
        return expect.graceLeft === null || (c.graceDeadline ?? NaN) - clock.now() === expect.graceLeft;
      },
      via,
    });
    const start = async (ignoreTerm: boolean) => {
      const puppet = await stage.puppet(`p${puppets++}`, { ignoreTerm });
      // Labels are unique within a workspace: each puppet its own.
      const cmd = await ws.run({ exec: puppet.exec, argv: puppet.argv, label: `${ignoreTerm ? 'stubborn' : 'obedient'}-${puppets}` });
      pids.add(cmd.pid);
      // Past its `trap`, or a SIGTERM could still end it.
      if (ignoreTerm) await puppetReady(cmd.pid, TIMEOUT_MS);
      (ignoreTerm ? stubborn : obedient).push({ puppet, cmd });
    };
    const end = (list: typeof stubborn) => {
      const first = list.shift()!;
      first.puppet.exit(0);
      ended.push(first.cmd.exited);
    };
    for (const [index, { event, expect }] of path.steps.entries()) {
      const where = `step ${index + 1} (${describeWorkspaceEvent(event)}) of [${path.name}]`;
      checkStayed(where, probe(previous, []));
      switch (event.type) {
        case 'RUN_STUBBORN':
          await start(true);
          break;
        case 'RUN_OBEDIENT':
          await start(false);
          break;
        case 'END_STUBBORN':
          end(stubborn);
          break;
        case 'END_OBEDIENT':
          end(obedient);
          break;
        case 'STOP':
          pending.push(ws.stop({ graceMs: event.graceMs }));
          break;
        case 'TICK':
        case 'ELAPSE':
          await clock.advance(event.ms);
          break;
        case 'SAMPLE':
          await ws.stats();
          break;
      }
      // Nothing to wait for when the state does not change: make sure the worker has seen the
      // event before checking that nothing happened (the clock's ack comes after it).
      if (expect.state === previous.state) await clock.advance(0);
      // SIGTERM ends the obedient ones; a stop that is over ends everything.
      if (expect.reason !== null) ended.push(...obedient.splice(0).map((o) => o.cmd.exited));
      if (expect.state === 'stopped') ended.push(...stubborn.splice(0).map((s) => s.cmd.exited));
      const via = expect.state === 'stopped' ? ['reaping.terminating', 'reaping.killing'] : [];
      await expectProbe(where, probe(expect, via), previous.state, expect.state);
      await withTimeout(Promise.all(ended.splice(0)), `${where}: the commands the model says ended`);
      if (expect.alive !== null) {
        const alive = (await ws.commands()).filter((run) => run.alive).length;
        assert.equal(alive, expect.alive, `${where}: commands alive`);
      }
      previous = expect;
    }
  } finally {
    watch.close();
    await cleanUp(rt, ws, pending, stage, pids);
  }
}

describe('model-based: workspace machine', () => {
  const clock = new ManualClock();
  let rt: Runtime;
  before(async () => {
    rt = await startRuntime({ clock, statsIntervalMs: 0 });
  });
  const { paths, info } = workspacePaths(cap(40));
  describe(`workspace: ${summary(info, paths.length)}`, () => {
    for (const path of paths) test(path.name, () => runWorkspacePath(rt, clock, path));
  });
});

// ── the pipeline machine ────────────────────────────────────────────────────────────────
//
// The pipeline model is the one `shuma/testing` exports (src/testing/pipeline-model.ts); here it
// runs on two specs of our own, then once more as a user would call it.

describe('model-based: pipeline machine', () => {
  const clock = new ManualClock();
  let rt: Runtime;
  before(async () => {
    rt = await startRuntime({ clock, statsIntervalMs: 0 });
  });
  const pair = (label: string) => ({
    label,
    workspace: 'replaced-per-path',
    nodes: [
      { label: 'a', exec: '/bin/true' },
      { label: 'b', exec: '/bin/true' },
    ],
    edges: [{ from: 'a', to: 'b' }],
  });
  const specs = [
    {
      name: 'a | b, restart (100 ms, 150 ms), maxRestarts 2',
      spec: { ...pair('mbt-restart'), restart: { onFailure: true, backoffMs: 100, maxBackoffMs: 150, maxRestarts: 2 } },
      options: { maxPaths: cap(40) },
    },
    { name: 'a | b, no restart policy', spec: pair('mbt-once'), options: {} },
    {
      name: 'a | b, no restart policy, exits only: every simple path',
      spec: pair('mbt-simple'),
      options: { outcomes: ['exit0', 'exit1'] as Array<'exit0' | 'exit1'>, stopGraceMs: false as const, ticks: false, spawnFailures: false, simplePaths: 16 },
    },
  ];
  for (const { name, spec, options } of specs) {
    const paths = pipelineModelPaths(spec, options);
    describe(`${name}: ${summary(paths.info, paths.length)}`, () => {
      for (const path of paths) test(path.name, () => runPipelineModelPath(rt, clock, spec, path).then(() => undefined));
    });
  }
});

// ── the exported helper, as a user calls it ─────────────────────────────────────────────

describe('model-based: shuma/testing helper on a user spec', () => {
  const clock = new ManualClock();
  let rt: Runtime;
  before(async () => {
    rt = await startRuntime({ clock });
  });
  // A three-stage pipeline judged by its last node, relaunched at most once.
  const spec = {
    label: 'etl',
    workspace: 'set-by-the-runner',
    discern: 'last' as const,
    nodes: [
      { label: 'extract', exec: 'curl', argv: ['-s', 'http://example.invalid/'] },
      { label: 'transform', exec: 'jq', argv: ['.items[]'] },
      { label: 'load', exec: 'psql', argv: ['-c', '\\copy items from stdin'] },
    ],
    edges: [
      { from: 'extract', to: 'transform' },
      { from: 'transform', to: 'load' },
    ],
    restart: { onFailure: true, backoffMs: 500, maxRestarts: 1 },
  };
  const paths = pipelineModelPaths(spec, { maxPaths: 12 });
  test(`the paths are bounded and deterministic (${summary(paths.info, paths.length)})`, () => {
    assert.ok(paths.length > 0 && paths.length <= 12);
    assert.deepEqual(
      pipelineModelPaths(spec, { maxPaths: 12 }).map((p) => p.name),
      paths.map((p) => p.name),
    );
    assert.ok(paths.every((p) => p.steps[0]!.event.type === 'RUN' || p.steps[0]!.event.type === 'BREAK'));
  });
  test('a path written by hand: the model supplies the expectations (discern last: only load counts)', async () => {
    const path = pipelineModelPath(spec, [
      { type: 'RUN' },
      { type: 'EXIT', node: 'extract', code: 1 },
      { type: 'KILL', node: 'transform' },
      { type: 'EXIT', node: 'load', code: 0 },
    ]);
    assert.deepEqual(
      path.steps.map((step) => step.expect.state),
      ['running', 'running', 'running', 'succeeded'],
    );
    assert.deepEqual(path.steps.at(-1)!.expect.exits, { extract: 1, transform: 137, load: 0 });
    const run = await runPipelineModelPath(rt, clock, spec, path);
    assert.deepEqual(run.result, { ok: true, exits: run.result!.exits, restarts: 0, state: 'succeeded' });
    assert.throws(() => pipelineModelPath(spec, [{ type: 'RUN' }, { type: 'EXIT', node: 'load', code: 0 }, { type: 'EXIT', node: 'load', code: 0 }]), /cannot happen/);
  });
  test('the runner notices an actor that does not do what the path says', async () => {
    const path = pipelineModelPath(spec, [
      { type: 'RUN' },
      { type: 'EXIT', node: 'extract', code: 0 },
      { type: 'EXIT', node: 'transform', code: 0 },
      { type: 'EXIT', node: 'load', code: 1 },
    ]);
    assert.equal(path.steps.at(-1)!.expect.state, 'backoff');
    // A wrong model: it says `load` failing ends the pipeline.
    const wrong = structuredClone(path);
    wrong.steps.at(-1)!.expect = { ...wrong.steps.at(-1)!.expect, state: 'failed', backoffMs: null };
    await assert.rejects(runPipelineModelPath(rt, clock, spec, wrong, { timeoutMs: 2000 }), /step 4 of .*expected \{"state":"failed"/);
  });
  for (const path of paths) {
    test(path.name, async () => {
      const run = await runPipelineModelPath(rt, clock, spec, path, { workspace: { label: 'etl model' } });
      assert.equal(run.steps.length, path.steps.length);
      for (const pid of run.pids) assert.equal(isAlive(pid), false);
    });
  }
});
