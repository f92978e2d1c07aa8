// One command at a time from the CLI, against a real daemon: stop, restart and delete a command,
// restart a whole workspace, `--restart always`, a refused duplicate label, and `ps` in backoff.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import type { DeleteResult, PsResult, RestartResult, RunResult, StopResultData } from '../src/protocol/control-results.js';
import { fixture, isAlive } from './helpers.js';
import { cli, cliJson, pollCli, startDaemon, tempDir, waitAllGone, type Daemon } from './daemon-helpers.js';

let daemon: Daemon;
before(async () => {
  daemon = await startDaemon();
});

const ps = () => cliJson<PsResult>(['ps'], daemon.env);
const row = (result: PsResult, ws: string, label: string) =>
  result.workspaces.find((w) => w.label === ws)?.commands.find((c) => c.label === label);

test('stop, restart and delete one command by ws/label, label or id; restart a whole workspace', async () => {
  const api = await cliJson<RunResult>(['run', '-w', 'shop', '--label', 'api', '--restart', 'on-failure', '--', fixture('forever.sh')], daemon.env);
  const worker = await cliJson<RunResult>(['run', '-w', 'shop', '--label', 'worker', '--', fixture('forever.sh')], daemon.env);

  const stopped = await cliJson<StopResultData>(['stop', 'shop/api', '--grace', '2000'], daemon.env);
  assert.deepEqual([stopped.kind, stopped.label, stopped.reaped], ['command', 'shop/api', 1]);
  await waitAllGone([api.command.pid]);
  let now = await ps();
  assert.equal(row(now, 'shop', 'api')?.state, 'stopped');
  assert.equal(row(now, 'shop', 'api')?.pid, null, 'a stopped command shows no pid');
  assert.equal(row(now, 'shop', 'worker')?.state, 'running');
  assert.ok(isAlive(worker.command.pid));

  const one = await cli(['restart', 'api'], daemon.env);
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stdout, /^restarted shop\/api: pid \d+, run [0-9A-Z]{26}, restart 1\n$/);

  const all = await cliJson<RestartResult>(['restart', 'shop'], daemon.env);
  assert.equal(all.kind, 'workspace');
  assert.deepEqual(all.restarted.map((c) => c.name).sort(), ['shop/api', 'shop/worker']);
  await waitAllGone([worker.command.pid]);
  now = await ps();
  for (const c of all.restarted) {
    assert.ok(isAlive(c.pid));
    assert.equal(row(now, 'shop', c.name.split('/')[1]!)?.pid, c.pid);
  }

  const deleted = await cliJson<DeleteResult>(['delete', worker.command.commandKey, '--grace', '0'], daemon.env);
  assert.deepEqual([deleted.name, deleted.reaped], ['shop/worker', 1]);
  now = await ps();
  assert.equal(row(now, 'shop', 'worker'), undefined);
  assert.equal(now.workspaces.find((w) => w.label === 'shop')?.state, 'running');

  const notFound = await cli(['delete', 'shop/nothing'], daemon.env);
  assert.equal(notFound.code, 1);
  assert.match(notFound.stderr, /COMMAND_NOT_FOUND: no command has the id or label "shop\/nothing"/);
  await cliJson(['stop', 'shop', '--grace', '0'], daemon.env);
});

test('a second --label in one workspace is refused naming the first; --restart always relaunches a success', async () => {
  await cliJson<RunResult>(['run', '-w', 'names', '--label', 'ticker', '--', fixture('forever.sh')], daemon.env);
  const dup = await cli(['run', '-w', 'names', '--label', 'ticker', '--', fixture('forever.sh')], daemon.env);
  assert.equal(dup.code, 2);
  assert.match(dup.stderr, /INVALID_SPEC: label "ticker" is already the label of command names\/ticker .*shuma restart names\/ticker/);

  await cliJson<RunResult>(['run', '-w', 'names', '--label', 'tick', '--restart', 'always', '--backoff-ms', '1', '--max-restarts', '2', '--', '/bin/true'], daemon.env);
  const done = await pollCli(ps, (r) => row(r, 'names', 'tick')?.state === 'exited', 'tick to be relaunched twice and end');
  assert.equal(row(done, 'names', 'tick')?.restarts, 2);
  assert.equal(row(done, 'names', 'tick')?.exitStatus, 0);
  await cliJson(['stop', 'names', '--grace', '0'], daemon.env);
});

test('run --group puts a command under one of its workspace\'s named supervision groups; a group it does not have is refused', async () => {
  const file = path.join(tempDir(), 'grouped.yaml');
  writeFileSync(file, ['workspaces:', '  - label: grouped', '    groups: { web: { strategy: one_for_all } }', ''].join('\n'));
  const applied = await cli(['apply', file], daemon.env);
  assert.equal(applied.code, 0, applied.stderr);
  await cliJson<RunResult>(['run', '-w', 'grouped', '--group', 'web', '--label', 'front', '--', fixture('forever.sh')], daemon.env);
  const described = await cliJson<{ spec: { group?: string } }>(['describe', 'grouped/front'], daemon.env);
  assert.equal(described.spec.group, 'web');
  const refused = await cli(['run', '-w', 'grouped', '--group', 'db', '--', fixture('forever.sh')], daemon.env);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /INVALID_SPEC: .*names no group of this workspace: 'db' \(groups: web\)/);
  assert.equal((await ps()).workspaces.find((w) => w.label === 'grouped')?.commands.length, 1, 'nothing started for the refused one');
  await cliJson(['stop', 'grouped', '--grace', '0'], daemon.env);
});

test('ps shows no pid for a command in backoff, and the time until its next run', async () => {
  await cliJson<RunResult>(['run', '-w', 'crashy', '--label', 'crash', '--restart', 'on-failure', '--backoff-ms', '60000', '--', '/bin/false'], daemon.env);
  const waiting = await pollCli(ps, (r) => row(r, 'crashy', 'crash')?.state === 'backoff', 'the crasher in backoff');
  const crash = row(waiting, 'crashy', 'crash')!;
  assert.equal(crash.pid, null);
  assert.ok(crash.restartAt! > Date.now() + 30_000);
  const text = await cli(['ps'], daemon.env);
  assert.match(text.stdout, /command\s+crashy\/crash\s+[0-9A-Z]{26}\s+backoff [56]\d\.\ds\s+-\s/);
  await cliJson(['stop', 'crashy', '--grace', '0'], daemon.env);
});

test('logs across relaunches and a daemon restart, by lines; flush empties them', async () => {
  const home = daemon.home;
  await cliJson<RunResult>(['run', '-w', 'journal', '--label', 'pager', '--restart', 'always', '--backoff-ms', '1', '--max-restarts', '2', '--', '/bin/sh', '-c', 'echo "page $$"'], daemon.env);
  await pollCli(ps, (r) => row(r, 'journal', 'pager')?.state === 'exited', 'three runs of pager');
  const all = await cli(['logs', 'journal/pager'], daemon.env);
  assert.equal(all.stdout.split('\n').filter((l) => l.startsWith('page ')).length, 3, all.stdout);
  const two = await cli(['logs', '--lines', '2', 'pager'], daemon.env);
  assert.deepEqual(two.stdout.split('\n').filter(Boolean), all.stdout.split('\n').filter(Boolean).slice(1));
  await cliJson<RunResult>(['run', '-w', 'journal', '--label', 'svc', '--restart', 'on-failure', '--', '/bin/sh', '-c', 'echo "svc $$"; exec sleep 1000'], daemon.env);
  await pollCli(() => cli(['logs', 'svc'], daemon.env), (r) => r.stdout.startsWith('svc '), 'svc to write');

  // The daemon stops (state saved) and a new one on the same home brings the workspace back.
  assert.equal(await daemon.stop('SIGTERM'), 0);
  daemon = await startDaemon({ home });
  const again = await pollCli(() => cli(['logs', 'journal/svc'], daemon.env), (r) => r.stdout.split('\n').filter(Boolean).length === 2, 'the restored svc to write again');
  assert.match(again.stdout, /^svc \d+\nsvc \d+\n$/);

  const flushed = await cli(['flush', 'journal/svc'], daemon.env);
  assert.equal(flushed.code, 0, flushed.stderr);
  assert.equal(flushed.stdout, 'flushed the log files of command journal/svc\n');
  assert.equal((await cli(['logs', 'journal/svc'], daemon.env)).stdout, '');
  const everything = await cli(['flush'], daemon.env);
  assert.equal(everything.stdout, 'flushed every log file\n');
  const bad = await cli(['logs', '--lines', '2', '--tail', '5', 'svc'], daemon.env);
  assert.equal(bad.code, 2);
  await cliJson(['stop', 'journal', '--grace', '0'], daemon.env);
});
