// Named supervision groups within a workspace (each its own OTP supervisor: strategy and
// intensity over its members only), a relaunch after a success under `restart.always` that is
// no failure for its group, and the start timeout of a command that never becomes ready.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseSpecText } from '../src/cli/spec-file.js';
import { psText } from '../src/cli/ps.js';
import { groupsGivenUp } from '../src/machines/group-supervisors.js';
import { ManualClock } from '../src/testing/index.js';
import type { ActorSnapshot, Command, Runtime, Workspace } from '../src/index.js';
import { fixture, isAlive, pollUntil, startRuntime, waitFor, waitForOutput, stateOf as state, untilState, freePort } from './helpers.js';

/** Top-level state names here (`running`, not `running.up`). */
const until = (cmd: Command, wanted: string) => untilState(cmd, wanted, wanted, state);

const livePids = async (ws: Workspace) => Object.fromEntries((await ws.commands()).filter((c) => c.alive).map((c) => [c.label, c.pid]));

const restart = { onFailure: true, backoffMs: 0 };

describe('named supervision groups', () => {
  let rt: Runtime;
  before(async () => {
    rt = await startRuntime({ statsIntervalMs: 0 });
  });

  /** Group db (a, b) under `db`; c in group web (one_for_one); d in the workspace's own group. */
  async function shop(db: object, own?: object) {
    const ws = await rt.createWorkspace({
      label: 'shop',
      ...(own ? { supervision: own as never } : {}),
      groups: { db: db as never, web: { strategy: 'one_for_one' } },
    });
    const cmds = await ws.runAll([
      { exec: fixture('forever.sh'), label: 'a', group: 'db', restart },
      { exec: fixture('forever.sh'), label: 'b', group: 'db', restart },
      { exec: fixture('forever.sh'), label: 'c', group: 'web', restart },
      { exec: fixture('forever.sh'), label: 'd', restart },
    ]);
    for (const cmd of cmds) await waitForOutput(ws, cmd.id, 'ready');
    return { ws, cmds: Object.fromEntries(cmds.map((c) => [c.label, c])) as Record<'a' | 'b' | 'c' | 'd', Command> };
  }

  test("one_for_all in group 'db' restarts db's members only; the other groups keep their processes", async () => {
    const { ws, cmds } = await shop({ strategy: 'one_for_all' }, { strategy: 'one_for_all' });
    process.kill(cmds.a.pid, 'SIGKILL');
    const now = await pollUntil(() => livePids(ws), (p) => p.a !== undefined && p.a !== cmds.a.pid && p.b !== undefined && p.b !== cmds.b.pid, 'a and b relaunched');
    // The workspace's own group is one_for_all too: it must not hear a failure of db's member.
    assert.equal(now.c, cmds.c.pid, 'c (group web) was left alone');
    assert.equal(now.d, cmds.d.pid, "d (the workspace's own group) was left alone");
    const trail = (await ws.why(cmds.b.commandKey)).map((e) => e.text);
    assert.ok(trail.some((t) => /restarted by its group: 'a' failed \(one_for_all in group 'db'\)/.test(t)), trail.join(' | '));
    await ws.stop({ graceMs: 0 });
  });

  test('past its intensity a named group gives up alone: its members stop, the others run on; why, ps and the snapshot say so', async () => {
    const { ws, cmds } = await shop({ strategy: 'one_for_one', intensity: { maxRestarts: 0, withinMs: 60_000 } });
    process.kill(cmds.a.pid, 'SIGKILL');
    const snapshot = await waitFor(ws.subscribe.bind(ws), (s) => groupsGivenUp(s.context).length > 0, 'group db to give up');
    assert.deepEqual(groupsGivenUp(snapshot.context), [
      "group 'db' gave up: restart intensity reached: 1 failures within 60000 ms (at most 0 restarts allowed)",
    ]);
    const left = await pollUntil(() => livePids(ws), (p) => p.a === undefined && p.b === undefined, "db's members stopped");
    assert.deepEqual(left, { c: cmds.c.pid, d: cmds.d.pid }, 'c and d run on');
    assert.equal(state(ws.getSnapshot()), 'running', 'without escalate the workspace stays');
    const trail = (await ws.why(cmds.b.commandKey)).map((e) => e.text);
    assert.ok(trail.some((t) => /^group 'db' gave up: restart intensity reached/.test(t)), trail.join(' | '));
    // ps: the workspace row says which group gave up.
    const text = psText({ workspaces: [{ id: ws.id, label: 'shop', state: 'running', uptimeMs: 1, commands: [], gaveUp: groupsGivenUp(ws.getSnapshot().context) }], pipelines: [] });
    assert.match(text, /workspace\s+shop\s+\S+\s+running; group 'db' gave up/);
    await ws.stop({ graceMs: 0 });
  });

  test("a named group's escalate stops the whole workspace; every command's why() names the group", async () => {
    const { ws, cmds } = await shop({ strategy: 'one_for_all', intensity: { maxRestarts: 0, withinMs: 1000 }, escalate: true });
    const stopped = waitFor(ws.subscribe.bind(ws), (s) => state(s) === 'stopped', 'the workspace to stop');
    process.kill(cmds.b.pid, 'SIGKILL');
    const final = await stopped;
    assert.equal(final.context.stopReason, 'supervision');
    for (const cmd of Object.values(cmds)) assert.ok(!isAlive(cmd.pid), `${cmd.label} is gone`);
    const trail = (await ws.why(cmds.d.commandKey)).map((e) => e.text);
    assert.ok(trail.some((t) => /^group 'db' gave up: restart intensity reached/.test(t)), trail.join(' | '));
  });

  test('a group no workspace group has, a bad group name, a group on a pipeline node: INVALID_SPEC naming it; nothing starts', async () => {
    await assert.rejects(rt.createWorkspace({ label: 'x', groups: { 'no space': { strategy: 'one_for_one' } } }), /groups has a group named "no space"/);
    await assert.rejects(rt.createWorkspace({ label: 'x', groups: { db: { strategy: 'two_for_one' as never } } }), /groups\.db\.strategy must be one of/);
    await assert.rejects(rt.createWorkspace({ label: 'x', groups: [] as never }), /groups must be an object of named groups/);
    assert.equal((await rt.listWorkspaces()).filter((w) => w.label === 'x').length, 0);
    const ws = await rt.createWorkspace({ label: 'y', groups: { db: { strategy: 'one_for_all' } } });
    await assert.rejects(
      ws.runAll([{ exec: fixture('forever.sh'), label: 'ok' }, { exec: fixture('forever.sh'), label: 'bad', group: 'dbb' }]),
      (error: Error & { code?: string }) => error.code === 'INVALID_SPEC' && /commands\[1\]\.group names no group of this workspace: 'dbb' \(groups: db\)/.test(error.message),
    );
    await assert.rejects(ws.run({ exec: fixture('forever.sh'), group: 'db2' }), /group names no group of this workspace: 'db2'/);
    assert.deepEqual(await ws.commands(), [], 'nothing of the refused sets started');
    await assert.rejects(
      rt.runPipeline({ label: 'p', workspace: ws.id, nodes: [{ label: 'n', exec: 'true', group: 'db' }], edges: [] }),
      /nodes\[0\]\.group is for commands run with ws\.run\(\), not pipeline nodes/,
    );
    await ws.stop({ graceMs: 0 });
  });

  test('a spec file: groups and members; an unknown group at file:line:column', () => {
    const good = parseSpecText('shop.yaml', [
      'workspaces:',
      '  - label: shop',
      '    groups:',
      '      caches: { strategy: one_for_all, intensity: { maxRestarts: 3, withinMs: 10000 } }',
      '    commands:',
      '      - { label: redis, exec: sleep, argv: ["9"], group: caches }',
    ].join('\n'));
    assert.equal(good.workspaces[0]!.spec.groups?.caches?.strategy, 'one_for_all');
    assert.equal(good.workspaces[0]!.commands[0]!.group, 'caches');
    assert.throws(
      () => parseSpecText('shop.yaml', ['workspaces:', '  - label: shop', '    commands:', '      - { label: redis, exec: sleep, group: cache }'].join('\n')),
      /shop\.yaml:4:\d+: workspaces\[0\]\.commands\[0\]\.group names no group of this workspace: 'cache' \(it declares no groups/,
    );
  });

  test("restart 'always' in a one_for_all group: a relaunch after exit 0 is no failure (no sibling restart, no intensity)", async () => {
    const ws = await rt.createWorkspace({ label: 'always', groups: { g: { strategy: 'one_for_all', intensity: { maxRestarts: 0, withinMs: 60_000 } } } });
    const [steady, tick] = await ws.runAll([
      { exec: fixture('forever.sh'), label: 'steady', group: 'g', restart },
      { exec: 'sh', argv: ['-c', 'echo tick'], label: 'tick', group: 'g', restart: { onFailure: true, always: true, backoffMs: 0, maxRestarts: 3 } },
    ]);
    await waitForOutput(ws, steady!.id, 'ready');
    await pollUntil(() => ws.commands(), (list) => list.some((c) => c.label === 'tick' && c.restarts === 3 && !c.alive), 'tick relaunched 3 times, then done');
    assert.deepEqual(groupsGivenUp(ws.getSnapshot().context), [], 'the group did not count a success as a failure');
    assert.ok(isAlive(steady!.pid), 'steady was never restarted by its group');
    assert.equal((await livePids(ws)).steady, steady!.pid);
    assert.ok(tick);
    await ws.stop({ graceMs: 0 });
  });
});

describe('start timeout: a command never ready is ended as a failure (manual clock)', () => {
  const clock = new ManualClock();
  let rt: Runtime;
  before(async () => {
    rt = await startRuntime({ clock, statsIntervalMs: 0 });
  });
  after(() => undefined);

  test('tcp probe: failing past startTimeoutMs ends the run (reason startTimeout); the restart policy relaunches it; why() says so', async () => {
    const ws = await rt.createWorkspace({ label: 'slow' });
    const port = await freePort();
    const cmd = await ws.run({
      exec: fixture('forever.sh'),
      label: 'web',
      ready: { tcp: port, intervalMs: 500, startTimeoutMs: 1200 },
      restart: { onFailure: true, backoffMs: 100 },
    });
    await until(cmd, 'up');
    await clock.advance(500);
    await waitFor(cmd.subscribe.bind(cmd), (s) => Number(s.context.probeFailures) === 1, 'a first failed probe');
    await clock.advance(500);
    await waitFor(cmd.subscribe.bind(cmd), (s) => Number(s.context.probeFailures) === 2, 'a second failed probe');
    assert.equal(state(cmd.getSnapshot()), 'up', 'before the deadline failures are only counted');
    await clock.advance(500);
    const backoff = await until(cmd, 'backoff');
    assert.equal((backoff.context.lastExit as { reason?: string }).reason, 'startTimeout');
    assert.ok(!isAlive(cmd.pid));
    const exit = await cmd.exited;
    assert.equal(exit.status, 143, 'ended by SIGTERM');
    const trail = (await ws.why(cmd.id)).map((e) => e.text);
    assert.ok(trail.some((t) => new RegExp(`^not ready within startTimeoutMs 1200 ms \\(tcp :${port}; last probe: .*ECONNREFUSED`).test(t)), trail.join(' | '));
    assert.ok(trail.some((t) => /ended, not ready in time/.test(t)), trail.join(' | '));
    await clock.advance(100);
    await until(cmd, 'up');
    await ws.stop({ graceMs: 0 });
  });

  test('line probe (told, not polled): the timer alone ends it; 0 waits forever', async () => {
    const ws = await rt.createWorkspace({ label: 'line' });
    const [never, patient] = await ws.runAll([
      { exec: fixture('forever.sh'), label: 'never', ready: { line: '^listening', startTimeoutMs: 1000 } },
      { exec: fixture('forever.sh'), label: 'patient', ready: { line: '^listening', startTimeoutMs: 0 } },
    ]);
    await until(never!, 'up');
    await until(patient!, 'up');
    await clock.advance(999);
    assert.equal(state(never!.getSnapshot()), 'up');
    await clock.advance(1);
    const ended = await until(never!, 'exited');
    assert.equal((ended.context.lastExit as { reason?: string }).reason, 'startTimeout');
    await clock.advance(200_000);
    assert.equal(state(patient!.getSnapshot()), 'up', 'startTimeoutMs 0 never times out');
    assert.ok(isAlive(patient!.pid));
    await ws.stop({ graceMs: 0 });
  });

  test('a bad startTimeoutMs is INVALID_SPEC', async () => {
    const ws = await rt.createWorkspace({ label: 'bad' });
    await assert.rejects(ws.run({ exec: fixture('forever.sh'), ready: { line: 'x', startTimeoutMs: -1 } }), /ready\.startTimeoutMs must be/);
    await ws.stop({ graceMs: 0 });
  });
});
