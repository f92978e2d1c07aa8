import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import type { ApplyReport, ApplySpec, Runtime } from '../src/index.js';
import { isShumaError } from '../src/index.js';
import { fixture, isAlive, pollUntil, startRuntime, waitGone } from './helpers.js';

// rt.apply converges on a spec as `kubectl apply` does: run twice, it changes nothing; a
// changed field restarts (or only updates) the one command it belongs to; --prune removes what
// the spec's workspaces no longer list; a bad spec changes nothing at all.

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const FOREVER = fixture('forever.sh');

function spec(workspaces: ApplySpec['workspaces']): ApplySpec {
  return { workspaces };
}

function base(): ApplySpec {
  return spec([
    {
      label: 'web',
      commands: [
        { label: 'api', exec: FOREVER, argv: ['one'] },
        { label: 'worker', exec: FOREVER, dependsOn: [{ label: 'api' }] },
      ],
      pipelines: [{ label: 'feed', nodes: [{ label: 'src', exec: 'sleep', argv: ['1000'] }, { label: 'sink', exec: 'cat' }], edges: [{ from: 'src', to: 'sink' }] }],
    },
  ]);
}

function lines(report: ApplyReport): string[] {
  return report.actions.map((a) => `${a.kind} ${a.name}: ${a.action}${a.changed ? ` (${a.changed.join(', ')})` : ''}`);
}

async function pidOf(rt: Runtime, wsLabel: string, label: string): Promise<number> {
  const ws = (await rt.listWorkspaces()).find((w) => w.label === wsLabel)!;
  const d = await rt.workspace(ws.id)!.describe(label);
  assert.ok(d.pid !== null, `${wsLabel}/${label} has a live process`);
  return d.pid!;
}

async function wsOf(rt: Runtime, label: string) {
  const info = (await rt.listWorkspaces()).filter((w) => w.label === label);
  assert.equal(info.length, 1, `one workspace ${label}`);
  return rt.workspace(info[0]!.id)!;
}

test('apply twice: the first creates everything, the second leaves everything as it is', async () => {
  const rt = await startRuntime();
  const first = await rt.apply(base());
  assert.deepEqual(lines(first), ['workspace web: created', 'command web/api: created', 'command web/worker: created', 'pipeline web/feed: created']);
  assert.ok(first.actions.every((a) => typeof a.id === 'string'));
  const pids = [await pidOf(rt, 'web', 'api'), await pidOf(rt, 'web', 'worker')];
  const second = await rt.apply(base());
  assert.deepEqual(lines(second), ['workspace web: unchanged', 'command web/api: unchanged', 'command web/worker: unchanged', 'pipeline web/feed: unchanged']);
  assert.deepEqual([await pidOf(rt, 'web', 'api'), await pidOf(rt, 'web', 'worker')], pids);
  assert.equal((await rt.listWorkspaces()).length, 1);
  const ws = await wsOf(rt, 'web');
  assert.equal([...(await ws.commands())].filter((c) => c.pipelineId !== undefined && c.alive).length, 2, 'the pipeline was not run twice');
});

test('a changed argv restarts that command alone under the same key; a dependsOn change only updates; a new command is created', async () => {
  const rt = await startRuntime();
  await rt.apply(base());
  const ws = await wsOf(rt, 'web');
  const before = await ws.describe('api');
  const workerPid = await pidOf(rt, 'web', 'worker');
  const next = base();
  next.workspaces[0]!.commands = [
    { label: 'api', exec: FOREVER, argv: ['two'] },
    { label: 'worker', exec: FOREVER },
    { label: 'extra', exec: FOREVER, dependsOn: [{ label: 'api', condition: 'started' }] },
  ];
  const report = await rt.apply(next);
  assert.deepEqual(lines(report), [
    'workspace web: unchanged',
    'command web/api: restarted (argv)',
    'command web/worker: updated (dependsOn)',
    'command web/extra: created',
    'pipeline web/feed: unchanged',
  ]);
  const after = await ws.describe('api');
  assert.equal(after.commandKey, before.commandKey, 'the same command, not a new one');
  assert.notEqual(after.pid, before.pid);
  assert.deepEqual(after.spec.argv, ['two']);
  assert.equal(after.restarts, before.restarts + 1);
  assert.equal(report.actions[1]!.id, after.id);
  assert.equal(isAlive(before.pid!), false, 'the old run is gone');
  assert.equal(await pidOf(rt, 'web', 'worker'), workerPid, 'an update does not restart');
  assert.equal((await ws.describe('worker')).spec.dependsOn, undefined);
  // Converged: once more changes nothing.
  assert.ok((await rt.apply(next)).actions.every((a) => a.action === 'unchanged'));
});

test('prune removes what the spec workspaces no longer list; without it they stay; other workspaces are never pruned', async () => {
  const rt = await startRuntime();
  await rt.apply(base());
  const other = await rt.createWorkspace({ label: 'other' });
  const otherCmd = await other.run({ exec: FOREVER, label: 'keep' });
  const web = await wsOf(rt, 'web');
  const manual = await web.run({ exec: FOREVER, label: 'manual' });
  const smaller = spec([{ label: 'web', commands: [{ label: 'api', exec: FOREVER, argv: ['one'] }] }]);
  const kept = await rt.apply(smaller);
  assert.deepEqual(lines(kept), ['workspace web: unchanged', 'command web/api: unchanged']);
  assert.ok(isAlive(manual.pid));
  const workerPid = await pidOf(rt, 'web', 'worker');
  const pipeline = [...(await web.commands())].filter((c) => c.pipelineId !== undefined).map((c) => c.pid);
  const pruned = await rt.apply(smaller, { prune: true });
  assert.deepEqual(lines(pruned), [
    'workspace web: unchanged',
    'command web/api: unchanged',
    'command web/worker: pruned',
    'command web/manual: pruned',
    'pipeline web/feed: pruned',
  ]);
  for (const pid of [workerPid, manual.pid, ...pipeline]) await waitGone(pid);
  assert.deepEqual((await web.commands()).map((c) => c.label), ['api']);
  assert.ok(isAlive(otherCmd.pid), 'a workspace the spec does not name is left alone');
  assert.equal(rt.workspace(other.id)?.label, 'other');
});

test('a dry run says what apply would do and changes nothing', async () => {
  const rt = await startRuntime();
  const dry = await rt.apply(base(), { dryRun: true });
  assert.equal(dry.dryRun, true);
  assert.deepEqual(lines(dry), ['workspace web: created', 'command web/api: created', 'command web/worker: created', 'pipeline web/feed: created']);
  assert.deepEqual(await rt.listWorkspaces(), []);
  await rt.apply(base());
  const pid = await pidOf(rt, 'web', 'api');
  const next = base();
  next.workspaces[0]!.commands![0]!.env = { MODE: 'x' };
  const planned = await rt.apply(next, { dryRun: true, prune: true });
  assert.deepEqual(lines(planned).slice(0, 2), ['workspace web: unchanged', 'command web/api: restarted (env)']);
  assert.equal(await pidOf(rt, 'web', 'api'), pid);
});

test('a bad spec changes nothing: a missing program in a later workspace is found before the first is touched', async () => {
  const rt = await startRuntime();
  await rt.apply(base());
  const pid = await pidOf(rt, 'web', 'api');
  const next = base();
  next.workspaces[0]!.commands![0]!.argv = ['changed'];
  next.workspaces.push({ label: 'later', commands: [{ label: 'ok', exec: FOREVER }, { label: 'typo', exec: 'no-such-program-xyz' }] });
  await assert.rejects(rt.apply(next), (error: unknown) => {
    assert.ok(isShumaError(error));
    assert.equal(error.code, 'SPAWN_FAILED');
    assert.equal(error.field, 'workspaces[1].commands[1].exec');
    assert.match(error.message, /no-such-program-xyz/);
    return true;
  });
  assert.equal(await pidOf(rt, 'web', 'api'), pid, 'web/api was not restarted');
  assert.deepEqual((await rt.listWorkspaces()).map((w) => w.label), ['web'], 'no workspace later was made');
  // A shape error is INVALID_SPEC naming its field; two commands with one label are refused.
  await assert.rejects(rt.apply(spec([{ label: 'x', commands: [{ exec: FOREVER }, { exec: FOREVER }] }])), /INVALID_SPEC: workspaces\[0\]\.commands\[1\]\.label "forever.sh" is the label of an earlier command too/);
  await assert.rejects(rt.apply({ workspaces: [] }), /INVALID_SPEC: workspaces must be a non-empty list/);
  await assert.rejects(rt.apply(base(), { prune: 'yes' } as never), /INVALID_ARGUMENT|prune/);
});

test('a changed workspace field recreates the workspace with everything it holds', async () => {
  const rt = await startRuntime();
  await rt.apply(base());
  const old = await wsOf(rt, 'web');
  const pid = await pidOf(rt, 'web', 'api');
  const next = base();
  next.workspaces[0]!.env = { TIER: 'blue' };
  const report = await rt.apply(next);
  assert.deepEqual(lines(report).slice(0, 2), ['workspace web: recreated (env)', 'command web/api: created']);
  await waitGone(pid);
  const now = await wsOf(rt, 'web');
  assert.notEqual(now.id, old.id);
  assert.equal((await now.describe('api')).env.TIER, 'blue');
});

test('describe: spec, environment, limits, policy and restarts, state and readiness, runs, log files', async () => {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'shuma-describe-'));
  dirs.push(stateDir);
  const rt = await startRuntime({ stateDir });
  const ws = await rt.createWorkspace({ label: 'd', env: { FROM_WS: '1' }, limits: { nofile: 256 } });
  const cmd = await ws.run({
    label: 'svc',
    exec: 'sh',
    argv: ['-c', 'echo hi; exit 3'],
    env: { OWN: 'yes' },
    restart: { onFailure: true, backoffMs: 60_000, maxRestarts: 5 },
  });
  await cmd.exited;
  const d = await pollUntil(() => ws.describe('svc'), (x) => x.state === 'backoff', 'svc in backoff');
  assert.equal(d.label, 'svc');
  assert.deepEqual(d.workspace, { id: ws.id, label: 'd' });
  assert.deepEqual(d.spec.argv, ['-c', 'echo hi; exit 3']);
  assert.equal(d.env.OWN, 'yes');
  assert.equal(d.env.FROM_WS, '1');
  assert.ok(d.env.PATH, 'the runtime environment beneath');
  assert.deepEqual(d.limits, { nofile: 256 });
  assert.equal(d.restartPolicy.onFailure, true);
  assert.equal(d.restartPolicy.maxRestarts, 5);
  assert.equal(d.pid, null, 'no pid in backoff');
  assert.ok(d.restartAt !== null && d.restartAt > Date.now());
  assert.equal(d.ready, false);
  assert.equal(d.runs.length, 1);
  assert.deepEqual(d.runs[0]!.exit, { code: 3, signal: null, status: 3 });
  assert.equal(d.id, cmd.id);
  assert.ok(d.logFiles);
  assert.ok(d.logFiles.stdout.startsWith(path.join(stateDir, 'logs', ws.id)));
  assert.match(d.file, /\/sh$/);
  // By its run id and ws/label too; a name it does not have is COMMAND_NOT_FOUND.
  assert.equal((await ws.describe(cmd.id)).commandKey, d.commandKey);
  assert.equal((await ws.describe('d/svc')).commandKey, d.commandKey);
  await assert.rejects(ws.describe('nope'), /COMMAND_NOT_FOUND/);
  const live = await ws.run({ label: 'live', exec: FOREVER });
  const l = await ws.describe('live');
  assert.equal(l.pid, live.pid);
  assert.equal(l.state, 'running');
  assert.equal(l.ready, true);
});

test('apply after a restart of the runtime (same stateDir) finds what it made unchanged: specs compare as restored', async () => {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'shuma-apply-'));
  dirs.push(stateDir);
  const rich = spec([
    {
      label: 'rich',
      limits: { nofile: 512 },
      env: { A: '1' },
      supervision: { strategy: 'one_for_all' },
      commands: [{ label: 'web', exec: 'sh', argv: ['-c', 'echo ready; exec sleep 1000'], ready: { line: 'ready' }, restart: { onFailure: true } }],
      pipelines: base().workspaces[0]!.pipelines!,
    },
  ]);
  const rt1 = await startRuntime({ stateDir });
  assert.ok((await rt1.apply(rich)).actions.every((a) => a.action === 'created'));
  await rt1.shutdown({ graceMs: 0 });
  const rt2 = await startRuntime({ stateDir });
  assert.deepEqual(lines(await rt2.apply(rich)), ['workspace rich: unchanged', 'command rich/web: unchanged', 'pipeline rich/feed: unchanged']);
});
