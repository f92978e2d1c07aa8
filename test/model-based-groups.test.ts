// Model-based tests of supervision groups: a small abstract model of what a named group should
// do (written from the documented rules, not from the machines: OTP's rest_for_one over the
// supervision order, a dependant after what it depends on; a failure counts toward the
// intensity, past it the group gives up and its members stop; another group is never touched),
// paths through it chosen with @xstate/graph, driven on the real runtime with real processes and
// the manual clock (which alone moves the intensity window). After every step the real
// workspace must show, for each command, whether it runs and how many restarts it counts, and
// whether the group gave up.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { and, assign, setup, type SnapshotFrom } from 'xstate';
import type { CommandInfo, Runtime } from '../src/index.js';
import { groupsGivenUp } from '../src/machines/group-supervisors.js';
import { ManualClock, modelPaths } from '../src/testing/index.js';
import { fixture, isAlive, pollUntil, startRuntime } from './helpers.js';

const WINDOW_MS = 1000;
/** One ELAPSE: a failure one ELAPSE old is inside the window, two are out of it. */
const ELAPSE_MS = 600;
const MAX_RESTARTS = 2;
/** Group g (rest_for_one, intensity): a, then b (depends on a), then c (depends on b). */
const G = ['a', 'b', 'c'] as const;
/** Group h (one_for_one, no intensity): d alone. */
const LABELS = [...G, 'd'] as const;
type Label = (typeof LABELS)[number];
/** Kills per path: enough to reach the intensity, and to see a failure leave the window. */
const MAX_KILLS = 4;

type ModelEvent = { type: 'KILL'; label: Label } | { type: 'ELAPSE' } | { type: 'STOP' };

interface ModelContext {
  restarts: Record<Label, number>;
  /** The group's failures, by age in ELAPSEs (0: now). */
  failures: number[];
  gaveUp: boolean;
  kills: number;
}

const model = setup({
  types: { context: {} as ModelContext, events: {} as ModelEvent },
  guards: {
    inG: ({ event }) => event.type === 'KILL' && (G as readonly string[]).includes(event.label),
    exceeds: ({ context }) => context.failures.length + 1 > MAX_RESTARTS,
  },
  actions: {
    // rest_for_one: the failed member and every member after it in supervision order restart.
    restForOne: assign(({ context, event }) => {
      const from = G.indexOf((event as { label: 'a' | 'b' | 'c' }).label);
      const restarts = { ...context.restarts };
      for (const label of G.slice(from)) restarts[label]++;
      return { restarts, failures: [...context.failures, 0], kills: context.kills + 1 };
    }),
    giveUp: assign(({ context }) => ({ gaveUp: true, failures: [...context.failures, 0], kills: context.kills + 1 })),
    oneForOne: assign(({ context, event }) => {
      const label = (event as { label: Label }).label;
      return { restarts: { ...context.restarts, [label]: context.restarts[label] + 1 }, kills: context.kills + 1 };
    }),
    // Failures age; one older than the window no longer counts.
    elapse: assign(({ context }) => ({ failures: context.failures.map((age) => age + 1).filter((age) => age * ELAPSE_MS < WINDOW_MS) })),
  },
}).createMachine({
  id: 'groupsModel',
  context: { restarts: { a: 0, b: 0, c: 0, d: 0 }, failures: [], gaveUp: false, kills: 0 },
  initial: 'running',
  states: {
    running: {
      on: {
        KILL: [
          // The failure is noted first: past the intensity the group gives up instead.
          { guard: and(['inG', 'exceeds']), actions: 'giveUp' },
          { guard: 'inG', actions: 'restForOne' },
          { actions: 'oneForOne' },
        ],
        ELAPSE: { actions: 'elapse' },
        STOP: 'stopped',
      },
    },
    stopped: { type: 'final' },
  },
});

type ModelSnapshot = SnapshotFrom<typeof model>;

function events(snapshot: ModelSnapshot): ModelEvent[] {
  const c = snapshot.context;
  if (snapshot.status === 'done') return [];
  const kills: ModelEvent[] =
    c.kills >= MAX_KILLS ? [] : LABELS.filter((label) => label === 'd' || !c.gaveUp).map((label) => ({ type: 'KILL', label }));
  return [...kills, ...(c.failures.length > 0 ? [{ type: 'ELAPSE' } as const] : []), { type: 'STOP' }];
}

interface Expect {
  alive: Record<Label, boolean>;
  restarts: Record<Label, number>;
  gaveUp: boolean;
}

function describeEvent(event: ModelEvent): string {
  return event.type === 'KILL' ? `KILL ${event.label}` : event.type;
}

const { paths, info } = modelPaths(model, {
  events,
  key: (s) => JSON.stringify([s.value, s.context]),
  maxPaths: process.env.SHUMA_SLOW ? Number.POSITIVE_INFINITY : 14,
});

describe(`model-based: named groups (g: rest_for_one a → b → c, intensity ${MAX_RESTARTS} in ${WINDOW_MS} ms; h: one_for_one d): ${paths.length} paths, model ${info.states} states / ${info.transitions} transitions`, () => {
  const clock = new ManualClock();
  let rt: Runtime;
  before(async () => {
    rt = await startRuntime({ clock, statsIntervalMs: 0 });
  });

  test('the paths reach the give-up, a failure leaving the window, and a kill in each group', () => {
    const names = paths.map((p) => p.steps.map((s) => describeEvent(s.event)).join(' → '));
    assert.ok(paths.some((p) => p.steps.some((s) => s.snapshot.context.gaveUp)), `no path gives up: ${names.join('; ')}`);
    assert.ok(names.some((n) => /ELAPSE/.test(n)), 'no path lets the window move');
    for (const label of LABELS) assert.ok(names.some((n) => n.includes(`KILL ${label}`)), `no path kills ${label}`);
  });

  for (const path of paths) {
    const name = path.steps.map((s) => describeEvent(s.event)).join(' → ');
    test(name, async () => {
      const ws = await rt.createWorkspace({
        label: 'mbt groups',
        groups: {
          g: { strategy: 'rest_for_one', intensity: { maxRestarts: MAX_RESTARTS, withinMs: WINDOW_MS } },
          h: { strategy: 'one_for_one' },
        },
      });
      const restart = { onFailure: true, backoffMs: 0 };
      const pids = new Set<number>();
      try {
        // Declared out of order: the supervision order follows the dependencies.
        await ws.runAll([
          { exec: fixture('forever.sh'), label: 'c', group: 'g', restart, dependsOn: [{ label: 'b', condition: 'started' }] },
          { exec: fixture('forever.sh'), label: 'a', group: 'g', restart },
          { exec: fixture('forever.sh'), label: 'b', group: 'g', restart, dependsOn: [{ label: 'a', condition: 'started' }] },
          { exec: fixture('forever.sh'), label: 'd', group: 'h', restart },
        ]);
        const byLabel = (list: CommandInfo[]) => Object.fromEntries(list.map((c) => [c.label, c])) as Record<Label, CommandInfo>;
        let now = byLabel(await ws.commands());
        for (const [i, step] of path.steps.entries()) {
          const where = `step ${i + 1} (${describeEvent(step.event)}) of [${name}]`;
          const c = step.snapshot.context;
          const expect: Expect = {
            restarts: c.restarts,
            alive: Object.fromEntries(LABELS.map((l) => [l, step.snapshot.status !== 'done' && (l === 'd' || !c.gaveUp)])) as Record<Label, boolean>,
            gaveUp: c.gaveUp,
          };
          switch (step.event.type) {
            case 'KILL':
              process.kill(now[step.event.label].pid, 'SIGKILL');
              break;
            case 'ELAPSE':
              await clock.advance(ELAPSE_MS);
              break;
            case 'STOP':
              await ws.stop({ graceMs: 0 });
              break;
          }
          if (step.event.type === 'STOP') break;
          const shows = (list: Record<Label, CommandInfo>) =>
            LABELS.every((l) => list[l].restarts === expect.restarts[l] && list[l].alive === expect.alive[l] && (!expect.alive[l] || isAlive(list[l].pid))) &&
            (groupsGivenUp(ws.getSnapshot().context).length > 0) === expect.gaveUp;
          try {
            now = await pollUntil(async () => byLabel(await ws.commands()), shows, where);
          } catch {
            const list = byLabel(await ws.commands());
            assert.fail(`${where}: expected ${JSON.stringify(expect)}; the workspace shows ${JSON.stringify(LABELS.map((l) => [l, list[l].alive, list[l].restarts]))}, gave up: ${JSON.stringify(groupsGivenUp(ws.getSnapshot().context))}`);
          }
          for (const l of LABELS) if (now[l].alive) pids.add(now[l].pid);
        }
      } finally {
        if (rt.workspace(ws.id)) await ws.stop({ graceMs: 0 });
      }
      for (const pid of pids) assert.equal(isAlive(pid), false, `process ${pid} outlived its path`);
    });
  }
});
