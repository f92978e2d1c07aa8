// dependsOn between the commands of a workspace: a command starts only once its dependencies
// hold (started, ready, succeeded); one that never can is told so; a cycle or an unknown label
// is INVALID_SPEC; a stop ends dependants before what they depend on.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseSpecText } from '../src/cli/spec-file.js';
import { ManualClock } from '../src/testing/index.js';
import type { ActorSnapshot, Command, Runtime } from '../src/index.js';
import { fixture, pollUntil, startRuntime, waitFor, waitForOutput, nestedStateOf as state, untilState as until } from './helpers.js';

describe('dependsOn', () => {
  const clock = new ManualClock();
  let rt: Runtime;
  let dir: string;
  before(async () => {
    rt = await startRuntime({ clock, statsIntervalMs: 0 });
    dir = await mkdtemp(path.join(tmpdir(), 'shuma-deps-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('a worker waits until the web service is ready, then starts; run() resolves at its spawn', async () => {
    const ws = await rt.createWorkspace({ label: 'deps ready' });
    const flag = path.join(dir, 'web-ready');
    const web = await ws.run({ exec: fixture('forever.sh'), label: 'web', ready: { exec: ['test', '-e', flag], intervalMs: 100 } });
    let started = false;
    const worker = ws.run({ exec: fixture('forever.sh'), label: 'worker', dependsOn: [{ label: 'web', condition: 'ready' }] }).then((cmd) => {
      started = true;
      return cmd;
    });
    // Not ready: the probe fails, the worker waits.
    await clock.advance(100);
    await waitFor(web.subscribe.bind(web), (s) => Number(s.context.probeFailures) === 1, 'a failed probe');
    assert.equal(started, false, 'the worker did not start before web was ready');
    assert.deepEqual((await ws.commands()).map((c) => c.label), ['web']);
    await writeFile(flag, '');
    await clock.advance(100);
    await until(web, 'running');
    const cmd = await worker;
    await until(cmd, 'running');
    const trail = (await ws.why(cmd.commandKey)).map((e) => e.text);
    assert.equal(trail[0], 'waiting for its dependencies');
    await ws.stop({ graceMs: 0 });
  });

  test("'succeeded': a migration that exits 0 lets the service start; one that fails never does", async () => {
    const ws = await rt.createWorkspace({ label: 'deps succeeded' });
    await ws.run({ exec: '/bin/sh', argv: ['-c', 'exit 0'], label: 'migrate' });
    const web = await ws.run({ exec: fixture('forever.sh'), label: 'web', dependsOn: [{ label: 'migrate', condition: 'succeeded' }] });
    await waitForOutput(ws, web.id, 'ready');
    await ws.run({ exec: '/bin/sh', argv: ['-c', 'exit 3'], label: 'bad-migrate' });
    await assert.rejects(
      ws.run({ exec: fixture('forever.sh'), label: 'api', dependsOn: [{ label: 'bad-migrate', condition: 'succeeded' }] }),
      (e: { code?: string; message?: string }) => {
        assert.equal(e.code, 'DEPENDENCY_FAILED');
        assert.match(String(e.message), /'bad-migrate' exited before it was succeeded/);
        return true;
      },
    );
    assert.deepEqual((await ws.commands()).filter((c) => c.alive).map((c) => c.label), ['web']);
    await ws.stop({ graceMs: 0 });
  });

  test('an unknown label, a self-dependency, a taken label and a bad condition are INVALID_SPEC naming it; nothing starts', async () => {
    const ws = await rt.createWorkspace({ label: 'deps invalid' });
    await assert.rejects(ws.run({ exec: fixture('forever.sh'), label: 'w', dependsOn: [{ label: 'nope' }] }), (e: { code?: string; message?: string }) => {
      assert.equal(e.code, 'INVALID_SPEC');
      assert.match(String(e.message), /dependsOn\[0\]\.label names no command of workspace deps invalid: 'nope'/);
      return true;
    });
    await assert.rejects(ws.run({ exec: fixture('forever.sh'), label: 'w', dependsOn: [{ label: 'w' }] }), /cannot wait for itself/);
    await ws.run({ exec: fixture('forever.sh'), label: 'twin' });
    // Labels are unique within a workspace: a dependency's label can never be ambiguous.
    await assert.rejects(ws.run({ exec: fixture('forever.sh'), label: 'twin' }), /label "twin" is already the label of command/);
    await assert.rejects(ws.run({ exec: fixture('forever.sh'), dependsOn: [{ label: 'twin', condition: 'up' as never }] }), /condition must be one of 'started', 'ready', 'succeeded'/);
    assert.equal((await ws.commands()).length, 1);
    await ws.stop({ graceMs: 0 });
  });

  test('runAll: a set declared together may name a later command; a cycle is INVALID_SPEC naming it, and nothing starts', async () => {
    const ws = await rt.createWorkspace({ label: 'deps runAll' });
    await assert.rejects(
      ws.runAll([
        { exec: fixture('forever.sh'), label: 'a', dependsOn: [{ label: 'c' }] },
        { exec: fixture('forever.sh'), label: 'b', dependsOn: [{ label: 'a' }] },
        { exec: fixture('forever.sh'), label: 'c', dependsOn: [{ label: 'b' }] },
      ]),
      (e: { code?: string; message?: string }) => {
        assert.equal(e.code, 'INVALID_SPEC');
        assert.match(String(e.message), /commands\[0\]\.dependsOn makes a cycle: a → c → b → a/);
        return true;
      },
    );
    assert.deepEqual(await ws.commands(), []);
    const [worker, web] = await ws.runAll([
      { exec: fixture('forever.sh'), label: 'worker', dependsOn: [{ label: 'web', condition: 'started' }] },
      { exec: fixture('forever.sh'), label: 'web' },
    ]);
    assert.equal(worker!.label, 'worker');
    assert.ok(worker!.pid > 0 && web!.pid > 0);
    await ws.stop({ graceMs: 0 });
  });

  test('a spec file: dependencies in any order; an unknown label or a cycle at file:line:column', () => {
    const ok = parseSpecText('f.yaml', ['workspaces:', '  - label: w', '    commands:', '      - { label: worker, exec: w, dependsOn: [ { label: web } ] }', '      - { label: web, exec: s, ready: { tcp: 8080 } }', ''].join('\n'));
    assert.equal(ok.workspaces[0]!.commands.length, 2);
    assert.throws(
      () => parseSpecText('f.yaml', ['workspaces:', '  - label: w', '    commands:', '      - { label: worker, exec: w, dependsOn: [ { label: wbe } ] }', ''].join('\n')),
      /^SpecFileError: f\.yaml:4:\d+: workspaces\[0\]\.commands\[0\]\.dependsOn\[0\]\.label names no command of this workspace: 'wbe'/,
    );
    assert.throws(
      () => parseSpecText('f.yaml', ['workspaces:', '  - label: w', '    commands:', '      - { label: a, exec: x, dependsOn: [ { label: b } ] }', '      - { label: b, exec: x, dependsOn: [ { label: a } ] }', ''].join('\n')),
      /makes a cycle: a → b → a/,
    );
  });

  test('a stop ends dependants first: worker, then api, then db', async () => {
    const ws = await rt.createWorkspace({ label: 'deps stop order' });
    const log = path.join(dir, 'stop-order.log');
    const db = await ws.run({ exec: fixture('stop-order.sh'), argv: ['db', log], label: 'db' });
    const api = await ws.run({ exec: fixture('stop-order.sh'), argv: ['api', log], label: 'api', dependsOn: [{ label: 'db' }] });
    const worker = await ws.run({ exec: fixture('stop-order.sh'), argv: ['worker', log], label: 'worker', dependsOn: [{ label: 'api' }, { label: 'db' }] });
    for (const cmd of [db, api, worker]) await waitForOutput(ws, cmd.id, 'ready');
    await ws.stop({ graceMs: 10_000 });
    assert.deepEqual((await readFile(log, 'utf8')).trim().split('\n'), ['worker', 'api', 'db']);
  });
});

describe('supervision strategies', () => {
  let rt: Runtime;
  before(async () => {
    rt = await startRuntime({ statsIntervalMs: 0 });
  });
  const restart = { onFailure: true, backoffMs: 0 };

  async function three(strategy: 'one_for_one' | 'one_for_all' | 'rest_for_one', intensity?: { maxRestarts: number; withinMs: number }, escalate?: boolean) {
    const ws = await rt.createWorkspace({ label: strategy, supervision: { strategy, ...(intensity ? { intensity } : {}), ...(escalate ? { escalate } : {}) } });
    const cmds: Command[] = [];
    for (const label of ['a', 'b', 'c']) cmds.push(await ws.run({ exec: fixture('forever.sh'), label, restart }));
    for (const cmd of cmds) await waitForOutput(ws, cmd.id, 'ready');
    return { ws, cmds };
  }

  const livePids = async (ws: { commands(): Promise<Array<{ label: string; pid: number; alive: boolean }>> }) =>
    Object.fromEntries((await ws.commands()).filter((c) => c.alive).map((c) => [c.label, c.pid]));

  test('rest_for_one: b fails → b and c restart, a keeps running', async () => {
    const { ws, cmds } = await three('rest_for_one');
    const [a, b, c] = cmds as [Command, Command, Command];
    process.kill(b.pid, 'SIGKILL');
    const after = await pollUntil(() => livePids(ws), (p) => p.b !== undefined && p.b !== b.pid && p.c !== undefined && p.c !== c.pid, 'b and c relaunched');
    assert.equal(after.a, a.pid, 'a was left alone');
    const trail = (await ws.why(c.commandKey)).map((e) => e.text);
    assert.ok(trail.some((t) => /restarted by its group: 'b' failed \(rest_for_one\)/.test(t)), trail.join(' | '));
    await ws.stop({ graceMs: 0 });
  });

  test('one_for_all: c fails → a, b and c all restart', async () => {
    const { ws, cmds } = await three('one_for_all');
    process.kill(cmds[2]!.pid, 'SIGKILL');
    await pollUntil(
      () => livePids(ws),
      (p) => cmds.every((cmd) => p[cmd.label] !== undefined && p[cmd.label] !== cmd.pid),
      'all three relaunched',
    );
    await ws.stop({ graceMs: 0 });
  });

  test('one_for_one: only the failed one restarts', async () => {
    const { ws, cmds } = await three('one_for_one');
    process.kill(cmds[0]!.pid, 'SIGKILL');
    const after = await pollUntil(() => livePids(ws), (p) => p.a !== undefined && p.a !== cmds[0]!.pid, 'a relaunched');
    assert.equal(after.b, cmds[1]!.pid);
    assert.equal(after.c, cmds[2]!.pid);
    await ws.stop({ graceMs: 0 });
  });

  test('intensity: past maxRestarts within the window the group gives up and stops its members; the workspace says so', async () => {
    const { ws, cmds } = await three('one_for_one', { maxRestarts: 1, withinMs: 60_000 });
    process.kill(cmds[0]!.pid, 'SIGKILL');
    const again = await pollUntil(() => livePids(ws), (p) => p.a !== undefined && p.a !== cmds[0]!.pid, 'a relaunched once');
    process.kill(again.a!, 'SIGKILL');
    const snapshot = await waitFor(ws.subscribe.bind(ws), (s) => (s.context.group as { gaveUp: string | null }).gaveUp !== null, 'the group to give up');
    assert.match(String((snapshot.context.group as { gaveUp: string }).gaveUp), /restart intensity reached: 2 failures within 60000 ms \(at most 1 restarts allowed\)/);
    await pollUntil(() => livePids(ws), (p) => Object.keys(p).length === 0, 'every member stopped');
    assert.equal(state(ws.getSnapshot()), 'running', 'without escalate the workspace stays');
    await ws.stop({ graceMs: 0 });
  });

  test('intensity with escalate: the workspace stops, reason supervision', async () => {
    const { ws, cmds } = await three('one_for_all', { maxRestarts: 0, withinMs: 1000 }, true);
    const stopped = waitFor(ws.subscribe.bind(ws), (s) => state(s) === 'stopped', 'the workspace to stop');
    process.kill(cmds[1]!.pid, 'SIGKILL');
    const final = await stopped;
    assert.equal(final.context.stopReason, 'supervision');
  });

  test('a supervision spec that cannot work is INVALID_SPEC', async () => {
    await assert.rejects(rt.createWorkspace({ label: 'x', supervision: { strategy: 'one_for_some' as never } }), /supervision\.strategy must be one of 'one_for_one', 'one_for_all', 'rest_for_one'/);
    await assert.rejects(rt.createWorkspace({ label: 'x', supervision: { strategy: 'one_for_all', escalate: true } }), /supervision\.escalate needs an intensity/);
    await assert.rejects(rt.createWorkspace({ label: 'x', supervision: { strategy: 'one_for_all', intensity: { maxRestarts: 1, withinMs: 0 } } }), /supervision\.intensity\.withinMs must be > 0/);
    assert.equal((await rt.listWorkspaces()).filter((w) => w.label === 'x').length, 0);
  });
});
