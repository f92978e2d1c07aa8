// Model-based tests of readiness: paths through a small abstract model of what the command
// machine should do with an exec probe (written from the documented rules: up until a probe
// passes, ready after; failureThreshold failures in a row while ready end the run as unhealthy,
// a failure the restart policy sees), driven on the real runtime with a real process, a real
// probe program and the manual clock; the real actor is checked after every step.
import assert from 'node:assert/strict';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assign, setup, type SnapshotFrom } from 'xstate';
import type { ActorSnapshot, Command, Runtime } from '../src/index.js';
import { ActorWatch, ManualClock, modelPaths, stateName } from '../src/testing/index.js';
import { fixture, isAlive, startRuntime } from './helpers.js';

const INTERVAL_MS = 100;
const THRESHOLD = 2;
const BACKOFF_MS = 300;
const MAX_RESTARTS = 1;
const TIMEOUT_MS = 10_000;

type ModelEvent =
  | { type: 'RUN' }
  /** The probe program starts passing (its flag file appears) or failing (it goes). */
  | { type: 'HEAL' }
  | { type: 'SICKEN' }
  /** The clock moves one probe interval: one probe runs. */
  | { type: 'PROBE' }
  /** The clock moves past the backoff. */
  | { type: 'ELAPSE' }
  | { type: 'STOP' };

interface ModelContext {
  healthy: boolean;
  failures: number;
  restarts: number;
  unhealthyExit: boolean;
}

const model = setup({
  types: { context: {} as ModelContext, events: {} as ModelEvent },
  guards: {
    healthy: ({ context }) => context.healthy,
    thresholdReached: ({ context }) => context.failures + 1 >= THRESHOLD,
    mayRestart: ({ context }) => context.restarts < MAX_RESTARTS,
  },
  actions: {
    heal: assign({ healthy: true }),
    sicken: assign({ healthy: false }),
    fail: assign(({ context }) => ({ failures: context.failures + 1 })),
    pass: assign({ failures: 0 }),
    unhealthy: assign(({ context }) => ({ failures: context.failures + 1, unhealthyExit: true })),
    relaunch: assign(({ context }) => ({ restarts: context.restarts + 1, failures: 0 })),
  },
}).createMachine({
  id: 'readinessModel',
  context: { healthy: false, failures: 0, restarts: 0, unhealthyExit: false },
  initial: 'idle',
  states: {
    idle: { on: { RUN: 'up', HEAL: { actions: 'heal' } } },
    // Not ready: a failed probe is counted, never acted on.
    up: {
      on: {
        PROBE: [{ guard: 'healthy', target: 'running', actions: 'pass' }, { actions: 'fail' }],
        HEAL: { actions: 'heal' },
        SICKEN: { actions: 'sicken' },
        STOP: 'stopped',
      },
    },
    running: {
      on: {
        PROBE: [
          { guard: 'healthy', actions: 'pass' },
          { guard: 'thresholdReached', target: 'judging', actions: 'unhealthy' },
          { actions: 'fail' },
        ],
        HEAL: { actions: 'heal' },
        SICKEN: { actions: 'sicken' },
        STOP: 'stopped',
      },
    },
    judging: { always: [{ guard: 'mayRestart', target: 'backoff' }, { target: 'gaveUp' }] },
    backoff: {
      on: {
        ELAPSE: { target: 'up', actions: 'relaunch' },
        HEAL: { actions: 'heal' },
        SICKEN: { actions: 'sicken' },
        STOP: 'stopped',
      },
    },
    gaveUp: { type: 'final' },
    stopped: { type: 'final' },
  },
});

type ModelSnapshot = SnapshotFrom<typeof model>;

function events(snapshot: ModelSnapshot): ModelEvent[] {
  const c = snapshot.context;
  const toggle: ModelEvent = c.healthy ? { type: 'SICKEN' } : { type: 'HEAL' };
  switch (snapshot.value) {
    case 'idle':
      return [{ type: 'RUN' }, ...(c.healthy ? [] : [toggle])];
    case 'up':
      // Failures while up change nothing but a count: two show it, more would only grow the graph.
      return [...(c.healthy || c.failures < 2 ? [{ type: 'PROBE' } as const] : []), toggle, { type: 'STOP' }];
    case 'running':
      return [{ type: 'PROBE' }, toggle, { type: 'STOP' }];
    case 'backoff':
      return [{ type: 'ELAPSE' }, toggle, { type: 'STOP' }];
    default:
      return [];
  }
}

interface Expect {
  state: string;
  failures: number;
  restarts: number;
  unhealthyExit: boolean;
}

function expectOf(snapshot: ModelSnapshot): Expect {
  return { state: String(snapshot.value), failures: snapshot.context.failures, restarts: snapshot.context.restarts, unhealthyExit: snapshot.context.unhealthyExit };
}

function matches(expect: Expect, snapshot: ActorSnapshot | null): boolean {
  if (!snapshot || stateName(snapshot.value) !== expect.state) return false;
  const c = snapshot.context as { probeFailures?: number; restarts?: number; lastExit?: { reason?: string | null } | null };
  if (c.restarts !== expect.restarts) return false;
  // In backoff and after, the failures counted are the ended run's; a new run starts from 0.
  if (expect.state === 'up' || expect.state === 'running') {
    if (c.probeFailures !== expect.failures) return false;
  }
  if (expect.unhealthyExit && (expect.state === 'backoff' || expect.state === 'gaveUp') && c.lastExit?.reason !== 'unhealthy') return false;
  return true;
}

function describeEvent(event: ModelEvent): string {
  return event.type;
}

const { paths, info } = modelPaths(model, { events, maxPaths: process.env.SHUMA_SLOW ? Number.POSITIVE_INFINITY : 24 });

describe(`model-based: readiness (exec probe, threshold ${THRESHOLD}, maxRestarts ${MAX_RESTARTS}): ${paths.length} paths, model ${info.states} states / ${info.transitions} transitions`, () => {
  const clock = new ManualClock();
  let rt: Runtime;
  let dir: string;
  before(async () => {
    rt = await startRuntime({ clock, statsIntervalMs: 0 });
    dir = await mkdtemp(path.join(tmpdir(), 'shuma-mbt-ready-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('the model covers ready, unhealthy, a relaunch and giving up', () => {
    const states = new Set(paths.flatMap((p) => p.steps.map((s) => String(s.snapshot.value))));
    for (const state of ['up', 'running', 'backoff', 'gaveUp', 'stopped']) assert.ok(states.has(state), `no path reaches ${state}`);
  });

  for (const [n, path_] of paths.entries()) {
    const name = path_.steps.map((s) => describeEvent(s.event)).join(' → ');
    test(name, async () => {
      const flag = path.join(dir, `healthy-${n}`);
      const ws = await rt.createWorkspace({ label: `mbt readiness ${n}` });
      let cmd: Command | null = null;
      let watch: ActorWatch | null = null;
      const pids = new Set<number>();
      try {
        let previous: Expect = { state: '', failures: 0, restarts: 0, unhealthyExit: false };
        for (const [i, step] of path_.steps.entries()) {
          const expect = expectOf(step.snapshot);
          const where = `step ${i + 1} (${describeEvent(step.event)}) of [${name}]`;
          switch (step.event.type) {
            case 'RUN':
              cmd = await ws.run({
                exec: fixture('forever.sh'),
                label: 'service',
                ready: { exec: ['test', '-e', flag], intervalMs: INTERVAL_MS, failureThreshold: THRESHOLD, timeoutMs: 5000 },
                restart: { onFailure: true, backoffMs: BACKOFF_MS, maxRestarts: MAX_RESTARTS },
              });
              watch = new ActorWatch(cmd);
              break;
            case 'HEAL':
              await writeFile(flag, '');
              break;
            case 'SICKEN':
              await unlink(flag);
              break;
            case 'PROBE': {
              // The probe's answer is an event with the clock's time: it has run once the context says so.
              await clock.advance(INTERVAL_MS);
              const at = clock.now();
              await watch!.until(
                (s) => s !== null && (Number(s.context.stampedAt) >= at || stateName(s.value) !== previous.state),
                () => `${where}: the probe did not answer: ${JSON.stringify(watch!.snapshot)}`,
                TIMEOUT_MS,
              );
              break;
            }
            case 'ELAPSE':
              await clock.advance(BACKOFF_MS);
              break;
            case 'STOP':
              await ws.stop({ graceMs: 0 });
              break;
          }
          if (watch && step.event.type !== 'STOP') {
            await watch.until((s) => matches(expect, s), () => `${where}: expected ${JSON.stringify(expect)}; the actor shows ${stateName(watch!.snapshot?.value)} ${JSON.stringify(watch!.snapshot?.context)}`, TIMEOUT_MS);
            const seen: string[] = watch.takeSeen();
            const allowed = new Set([previous.state, expect.state, 'starting', 'ending', 'restarting']);
            assert.deepEqual(seen.filter((s) => !allowed.has(s)), [], `${where}: passed states the model does not allow (saw ${seen.join(' → ')})`);
          }
          const pid = cmd?.getSnapshot()?.context.pid;
          if (typeof pid === 'number') pids.add(pid);
          previous = expect;
        }
      } finally {
        watch?.close();
        if (rt.workspace(ws.id)) await ws.stop({ graceMs: 0 });
        await unlink(flag).catch(() => undefined);
      }
      for (const pid of pids) assert.equal(isAlive(pid), false, `process ${pid} outlived its path`);
    });
  }
});
