// The client commands against one real daemon: real sockets, real child processes, the built CLI.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import type { HealthResult, PsResult, RunResult, StatsEvent, WhyResult } from '../src/protocol/control-results.js';
import { ControlClient } from '../src/cli/control-client.js';
import { fixture, isAlive } from './helpers.js';
import { cli, cliJson, cliStream, pollCli, startDaemon, tempDir, waitAllGone, type Daemon } from './daemon-helpers.js';

let daemon: Daemon;
before(async () => {
  daemon = await startDaemon();
});

const ps = () => cliJson<PsResult>(['ps'], daemon.env);
const commandRow = (result: PsResult, ws: string, label: string) =>
  result.workspaces.find((w) => w.label === ws)?.commands.find((c) => c.label === label);

test('run, ps, logs, why, stats, health and stop against a daemon; --json parses', async () => {
  const started = await cliJson<RunResult>(['run', '-w', 'web', '--label', 'server', '--', fixture('forever.sh')], daemon.env);
  assert.equal(started.workspace.label, 'web');
  assert.equal(started.workspace.created, true);
  assert.ok(isAlive(started.command.pid));

  const again = await cli(['run', '-w', 'web', '--restart', 'on-failure', '--max-restarts', '1', '--backoff-ms', '10', '--', '/bin/sh', '-c', 'echo oops >&2; exit 3'], daemon.env);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /^started web\/sh: pid \d+, command [0-9A-Z]{26}\n$/);

  const gaveUp = await pollCli(ps, (r) => commandRow(r, 'web', 'sh')?.state === 'gaveUp', 'the crasher to give up');
  const crasher = commandRow(gaveUp, 'web', 'sh')!;
  assert.equal(crasher.restarts, 1);
  assert.equal(crasher.exitStatus, 3);
  const server = commandRow(gaveUp, 'web', 'server')!;
  assert.equal(server.state, 'running');
  assert.equal(server.pid, started.command.pid);
  assert.equal(gaveUp.workspaces.find((w) => w.label === 'web')!.id, started.workspace.id);

  const table = await cli(['ps'], daemon.env);
  assert.equal(table.code, 0);
  assert.match(table.stdout, /^KIND\s+NAME\s+ID\s+STATE\s+PID/);
  assert.match(table.stdout, new RegExp(`command\\s+web/server\\s+${started.command.id}\\s+running\\s+${started.command.pid}`));

  await pollCli(() => cli(['logs', 'server'], daemon.env), (r) => r.stdout === 'ready\n', 'the server to say ready');
  const stderr = await cli(['logs', '--stderr', 'web/sh'], daemon.env);
  // Both runs of the crasher (it was relaunched once): logs follow a command across its runs.
  assert.equal(stderr.stdout, 'oops\noops\n');
  const logsJson = await cliJson<{ command: { label: string }; data: string }>(['logs', '--both', started.command.id], daemon.env);
  assert.equal(logsJson.data, 'ready\n');

  const why = await cliJson<WhyResult>(['why', 'web/sh'], daemon.env);
  assert.equal(why.kind, 'command');
  assert.deepEqual(why.entries.map((e) => e.text).filter((t) => /exited|gave up/.test(t)), ['exited 3', 'exited 3', 'gave up after 1 restarts']);
  const whyText = await cli(['why', 'web/sh'], daemon.env);
  assert.match(whyText.stdout, /gave up after 1 restarts/);

  const stats = await cliJson<StatsEvent>(['stats', 'web'], daemon.env);
  assert.equal(stats.workspaces.length, 1);
  assert.ok(stats.workspaces[0]!.stats!.processes >= 1);
  const health = await cliJson<HealthResult>(['health'], daemon.env);
  assert.equal(health.pid, daemon.pid);
  assert.equal(health.socket, daemon.socket);
  assert.ok(health.aliveWorkspaces >= 1);

  const stopped = await cliJson<{ kind: string; reaped: number }>(['stop', 'web', '--grace', '200'], daemon.env);
  assert.deepEqual([stopped.kind, stopped.reaped], ['workspace', 1]);
  await waitAllGone([started.command.pid]);
  assert.equal(commandRow(await ps(), 'web', 'server'), undefined);

  const missing = await cli(['stop', 'web'], daemon.env);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /WORKSPACE_NOT_FOUND: no workspace, pipeline or command has the id or label "web"/);
});

test('logs -f streams what is written after it started, and ends when the command does', async () => {
  const dir = tempDir();
  const go = path.join(dir, 'go');
  await cliJson<RunResult>(['run', '-w', 'follow', '--label', 'writer', '--', '/bin/sh', '-c', `echo before; while [ ! -e ${go} ]; do sleep 0.02; done; echo after; echo late >&2`], daemon.env);
  const tail = cliStream(['logs', '-f', 'writer'], daemon.env);
  const both = cliStream(['logs', '-f', '--both', '--json', 'follow/writer'], daemon.env);
  await tail.waitFor(/^before$/);
  await both.waitFor(/"before\\n"/);
  writeFileSync(go, '');
  await tail.waitFor(/^after$/);
  await both.waitFor(/"late\\n"/);
  assert.equal(await tail.exited, 0, tail.stderr());
  assert.equal(await both.exited, 0, both.stderr());
  assert.deepEqual(tail.lines, ['before', 'after']);
  for (const line of both.lines) JSON.parse(line);
  assert.match(both.lines.at(-1)!, /"ended":"the command ended"/);
  await cli(['stop', 'follow', '--grace', '0'], daemon.env);
});

test('two clients at once: a stats -w stream keeps going while ps, run and top are served', async () => {
  const watcher = cliStream(['stats', '-w', '--every', '100', '--json'], daemon.env);
  const top = cliStream(['top', '--every', '100'], daemon.env);
  await watcher.waitFor(/"workspaces"/);
  const started = await cliJson<RunResult>(['run', '-w', 'pair', '--', fixture('forever.sh')], daemon.env);
  const [seen] = await Promise.all([
    watcher.waitFor(new RegExp(`"label":"pair"`)),
    top.waitFor(/^shuma top — .* — Ctrl-C to quit$/),
    top.waitFor(/^pair\s+running/),
    ps(),
  ]);
  assert.ok(JSON.parse(seen).workspaces.some((w: { id: string }) => w.id === started.workspace.id));
  watcher.child.kill('SIGINT');
  top.child.kill('SIGTERM');
  assert.equal(await watcher.exited, 0, watcher.stderr());
  assert.equal(await top.exited, 0, top.stderr());
  for (const line of watcher.lines) JSON.parse(line);
  await cli(['stop', 'pair', '--grace', '0'], daemon.env);
  await waitAllGone([started.command.pid]);
});

test('pipeline run, save, ls, run-saved, stop; logs and why of a pipeline', async () => {
  const run = await cli(['pipeline', 'run', '-w', 'pipes', '--', 'seq', '1', '100', '|', 'grep', '7', '|', 'wc', '-l'], daemon.env);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /started pipeline pipes\/seq-grep-wc \([0-9A-Z]{26}\): seq=\d+ grep=\d+ wc=\d+/);
  await pollCli(ps, (r) => r.pipelines.some((p) => p.label === 'seq-grep-wc' && p.state === 'succeeded'), 'the pipeline to succeed');
  assert.equal((await cli(['logs', 'seq-grep-wc/wc'], daemon.env)).stdout.trim(), '19');
  const why = await cliJson<WhyResult>(['why', 'seq-grep-wc'], daemon.env);
  assert.equal(why.kind, 'pipeline');
  assert.ok(why.entries.length > 0);

  const saved = await cli(['pipeline', 'save', 'sleepy', '-w', 'pipes', '--label', 'sleepy', '--', 'sleep', '1000', '|', 'cat'], daemon.env);
  assert.equal(saved.code, 0, saved.stderr);
  const listed = await cliJson<{ saved: string[] }>(['pipeline', 'ls'], daemon.env);
  assert.deepEqual(listed.saved, ['sleepy']);
  const started = await cliJson<{ id: string; nodes: Array<{ pid: number }> }>(['pipeline', 'run-saved', 'sleepy'], daemon.env);
  assert.equal(started.nodes.length, 2);
  const stop = await cliJson<{ kind: string; id: string }>(['pipeline', 'stop', 'pipes/sleepy', '--grace', '100'], daemon.env);
  assert.deepEqual([stop.kind, stop.id], ['pipeline', started.id]);
  await waitAllGone(started.nodes.map((n) => n.pid));
  assert.equal((await cli(['pipeline', 'rm', 'sleepy'], daemon.env)).code, 0);
  assert.equal((await cli(['pipeline', 'run-saved', 'sleepy'], daemon.env)).code, 1);

  const bad = await cli(['pipeline', 'run', '-w', 'pipes', '--discern', 'most', '--', 'true'], daemon.env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /INVALID_SPEC: discern/);
  await cli(['stop', 'pipes', '--grace', '0'], daemon.env);
});

test('apply converges: created, then unchanged, restarted with the field that changed, pruned; a bad file is exit 2 at file:line:column', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'app.yaml');
  const write = (args: string, extra = '') =>
    writeFileSync(file, ['workspaces:', '  - label: applied', '    commands:', `      - { label: svc, exec: ${fixture('forever.sh')}, argv: [${args}] }`, extra, ''].join('\n'));
  write('a', `      - { label: side, exec: ${fixture('forever.sh')} }`);
  const applied = await cli(['apply', file], daemon.env);
  assert.equal(applied.code, 0, applied.stderr);
  assert.match(applied.stdout, /^workspace applied: created \[[0-9A-Z]{26}\]\ncommand applied\/svc: created \[[0-9A-Z]{26}\]\ncommand applied\/side: created/);
  const twice = await cli(['apply', file], daemon.env);
  assert.equal(twice.code, 0, twice.stderr);
  assert.equal(twice.stdout, 'workspace applied: unchanged\ncommand applied/svc: unchanged\ncommand applied/side: unchanged\n');
  const pid = commandRow(await ps(), 'applied', 'svc')!.pid!;

  write('b');
  const dry = await cli(['apply', '--dry-run', '--prune', file], daemon.env);
  assert.equal(dry.stdout, 'workspace applied: unchanged\ncommand applied/svc: restarted (argv changed)\ncommand applied/side: pruned\n(dry run: nothing was changed)\n');
  assert.equal(commandRow(await ps(), 'applied', 'svc')!.pid, pid);
  const sidePid = commandRow(await ps(), 'applied', 'side')!.pid!;
  const changed = await cli(['apply', '--prune', file], daemon.env);
  assert.equal(changed.code, 0, changed.stderr);
  assert.match(changed.stdout, /^workspace applied: unchanged\ncommand applied\/svc: restarted \(argv changed\) \[[0-9A-Z]{26}\]\ncommand applied\/side: pruned\n$/);
  await waitAllGone([pid, sidePid]);
  assert.equal(commandRow(await ps(), 'applied', 'side'), undefined);

  const described = await cli(['describe', 'applied/svc'], daemon.env);
  assert.equal(described.code, 0, described.stderr);
  assert.match(described.stdout, /^command applied\/svc \([0-9A-Z]{26}\)\n/);
  assert.match(described.stdout, /\n  state      running, ready\n/);
  assert.match(described.stdout, /\n  program    \S+forever\.sh "b"\n/);
  assert.match(described.stdout, /\n  logs       \S+\.out\.log\n +\S+\.err\.log\n/);
  assert.match(described.stdout, /\n  restart    never .*restarts: 1\n/);
  const json = await cliJson<{ pid: number; spec: { argv: string[] } }>(['describe', 'svc'], daemon.env);
  assert.deepEqual(json.spec.argv, ['b']);
  assert.equal(json.pid, commandRow(await ps(), 'applied', 'svc')!.pid);

  const bad = path.join(dir, 'bad.yaml');
  writeFileSync(bad, ['workspaces:', '  - label: x', '    commands:', '      - { exec: 5 }', ''].join('\n'));
  const refused = await cli(['apply', bad], daemon.env);
  assert.equal(refused.code, 2);
  assert.equal(refused.stderr, `shuma: ${bad}:4:11: workspaces[0].commands[0].exec must be a string (got 5)\n`);
  const live = commandRow(await ps(), 'applied', 'svc')!.pid!;
  await cli(['stop', 'applied', '--grace', '0'], daemon.env);
  await waitAllGone([live]);
});

test('a label that names commands in two workspaces is an error listing them; usage errors are exit 2', async () => {
  await cliJson<RunResult>(['run', '-w', 'twin-a', '--label', 'same', '--', 'true'], daemon.env);
  await cliJson<RunResult>(['run', '-w', 'twin-b', '--label', 'same', '--', 'true'], daemon.env);
  const ambiguous = await cli(['logs', 'same'], daemon.env);
  assert.equal(ambiguous.code, 2);
  assert.match(ambiguous.stderr, /AMBIGUOUS_NAME: "same" names 2 commands: twin-a\/same \([0-9A-Z]{26}\), twin-b\/same \([0-9A-Z]{26}\)/);
  assert.equal((await cli(['logs', 'twin-a/same'], daemon.env)).code, 0);

  const noProgram = await cli(['run', '-w', 'x'], daemon.env);
  assert.equal(noProgram.code, 2);
  assert.match(noProgram.stderr, /no program given: put it after --/);
  const unknownOption = await cli(['ps', '--colour'], daemon.env);
  assert.equal(unknownOption.code, 2);
  const badEnv = await cli(['run', '-w', 'x', '--env', 'A', '--', 'true'], daemon.env);
  assert.equal(badEnv.code, 2);
  const noCommand = await cli(['logs', 'nothing-is-called-this'], daemon.env);
  assert.equal(noCommand.code, 1);
  assert.match(noCommand.stderr, /COMMAND_NOT_FOUND/);
  const help = await cli(['run', '--help'], daemon.env);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: shuma run -w <workspace>/);
  await cli(['stop', 'twin-a', '--grace', '0'], daemon.env);
  await cli(['stop', 'twin-b', '--grace', '0'], daemon.env);
});

test('concurrent runs into one new workspace label make one workspace, not several', async () => {
  const results = await Promise.all(Array.from({ length: 4 }, () => cliJson<RunResult>(['run', '-w', 'race', '--', fixture('forever.sh')], daemon.env)));
  assert.equal(new Set(results.map((r) => r.workspace.id)).size, 1);
  assert.equal(results.filter((r) => r.workspace.created).length, 1);
  const race = (await ps()).workspaces.filter((w) => w.label === 'race');
  assert.equal(race.length, 1);
  assert.equal(race[0]!.commands.length, 4);
  await cli(['stop', 'race', '--grace', '0'], daemon.env);
  await waitAllGone(results.map((r) => r.command.pid));
});

test('fifty runs at once into a new label, on one connection: every one runs, in one workspace', async () => {
  // Arriving together, most find the workspace while it is still being made: they must wait
  // for it to run, not be refused.
  const client = await ControlClient.connect(daemon.socket);
  try {
    const results = (await Promise.all(
      Array.from({ length: 50 }, () => client.call('run', { workspace: 'crowd', spec: { exec: fixture('forever.sh') } })),
    )) as RunResult[];
    assert.equal(new Set(results.map((r) => r.workspace.id)).size, 1);
    assert.equal(results.filter((r) => r.workspace.created).length, 1);
    await cli(['stop', 'crowd', '--grace', '0'], daemon.env);
    await waitAllGone(results.map((r) => r.command.pid));
  } finally {
    client.close();
  }
});

test('stats -w of one workspace ends when that workspace stops', async () => {
  const started = await cliJson<RunResult>(['run', '-w', 'brief', '--', fixture('forever.sh')], daemon.env);
  const watcher = cliStream(['stats', '-w', '--every', '100', 'brief'], daemon.env);
  await watcher.waitFor(/^brief\s+[0-9A-Z]{26}\s+running/);
  await cli(['stop', 'brief', '--grace', '0'], daemon.env);
  assert.equal(await watcher.exited, 0, watcher.stderr());
  await waitAllGone([started.command.pid]);
});
