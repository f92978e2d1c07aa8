import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ENDED_RUNS_KEPT } from '../src/host/processes/process-table.js';
import { createRuntime, isShumaError, type Command } from '../src/index.js';
import type { PsResult } from '../src/protocol/control-results.js';
import { fixture, startRuntime, untilFinished, waitFor } from './helpers.js';
import { cli, cliJson, pollCli, startDaemon } from './daemon-helpers.js';

describe('a crash loop does not grow the process table without bound', () => {
  test('only the newest ended runs of a command are kept; restarts, logs and describe still tell the whole story', async () => {
    const rt = await startRuntime();
    try {
      const ws = await rt.createWorkspace({ label: 'crashloop-memory' });
      const runs = 3 * ENDED_RUNS_KEPT + 1;
      const first = await ws.run({
        label: 'flaky',
        exec: '/bin/sh',
        argv: ['-c', 'echo attempt; exit 3'],
        restart: { onFailure: true, backoffMs: 0, maxRestarts: runs - 1 },
      });
      const snapshot = first.getSnapshot();
      if (snapshot?.status === 'active') await waitFor(first.subscribe.bind(first), (s) => s.status !== 'active', 'the command gave up');

      const infos = (await ws.commands()).filter((info) => info.label === 'flaky');
      assert.ok(infos.length <= 2 * ENDED_RUNS_KEPT, `${infos.length} runs kept of ${runs}`);
      assert.ok(infos.length >= ENDED_RUNS_KEPT, `the newest ${ENDED_RUNS_KEPT} runs are kept (${infos.length})`);
      assert.equal(infos.at(-1)!.restarts, runs - 1, 'the newest run still counts every relaunch');
      assert.equal(infos.at(-1)!.exitStatus, 3);
      assert.ok(!infos.some((info) => info.id === first.id), 'the first run was let go');

      const description = await ws.describe('flaky');
      assert.equal(description.restarts, runs - 1);
      assert.ok(description.runs.length > 0 && description.runs.every((run) => run.exit?.status === 3));

      const output = (await ws.logs('flaky')).toString();
      assert.match(output, /attempt/);
      assert.ok(output.split('attempt').length - 1 <= 2 * ENDED_RUNS_KEPT, 'logs read from kept runs only');
    } finally {
      await rt.shutdown({ graceMs: 0 });
    }
  });
});

describe('a workspace running one-shot jobs does not grow without bound', () => {
  test('the newest keepFinished finished commands are kept, older ones forgotten; live ones stay whatever their age', async () => {
    const keep = 3;
    const rt = await startRuntime({ keepFinished: keep });
    const ws = await rt.createWorkspace({ label: 'one-shot-jobs' });
    const daemon = await ws.run({ label: 'daemon', exec: fixture('forever.sh') });
    const jobs: Command[] = [];
    for (let i = 0; i < 12; i++) {
      const job = await ws.run({ label: `job-${i}`, exec: '/bin/echo', argv: [`output of job ${i}`] });
      await untilFinished(job);
      jobs.push(job);
    }

    const listed = await ws.commands();
    const listedJobs = listed.filter((info) => info.label.startsWith('job-'));
    // Trimmed in steps of an eighth (here 1), and the newest may not be seen finished yet at the last trim.
    assert.ok(listedJobs.length >= keep && listedJobs.length <= keep + 2, `${listedJobs.length} finished jobs listed, keep ${keep}`);
    for (const job of jobs.slice(-keep)) assert.ok(listedJobs.some((info) => info.id === job.id), `${job.label}, among the newest, is kept`);
    assert.ok(!listedJobs.some((info) => info.id === jobs[0]!.id), 'the oldest job is forgotten');
    const daemonInfo = listed.find((info) => info.label === 'daemon');
    assert.ok(daemonInfo?.alive, 'a live command is never forgotten, however old');

    assert.equal((await ws.logs(jobs.at(-1)!.id)).toString(), 'output of job 11\n', 'a kept job\'s output is readable');
    await assert.rejects(ws.logs(jobs[0]!.id), (error: unknown) => isShumaError(error) && error.code === 'COMMAND_NOT_FOUND');
    await assert.rejects(ws.restartCommand('job-0'), (error: unknown) => isShumaError(error) && error.code === 'COMMAND_NOT_FOUND');
    const again = await ws.run({ label: 'job-0', exec: '/bin/true' });
    assert.equal(again.label, 'job-0', 'a forgotten command\'s label is free again');
    await untilFinished(again);
  });

  test('finished pipelines past the bound are forgotten with their nodes\' runs', async () => {
    const rt = await startRuntime({ keepFinished: 1 });
    const ws = await rt.createWorkspace({ label: 'one-shot-pipelines' });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const pipeline = await rt.runPipeline({
        label: `p${i}`,
        workspace: ws.id,
        nodes: [{ label: 'say', exec: '/bin/echo', argv: [`pipeline ${i}`] }, { label: 'read', exec: '/bin/cat' }],
        edges: [{ from: 'say', to: 'read' }],
      });
      assert.equal((await pipeline.done).ok, true);
      if (pipeline.getSnapshot()?.status === 'active') await waitFor(pipeline.subscribe.bind(pipeline), (s) => s.status !== 'active', `${pipeline.label} finished`);
      ids.push(pipeline.id);
    }
    assert.equal(rt.pipeline(ids[0]!), undefined, 'the oldest finished pipeline is forgotten');
    assert.ok(rt.pipeline(ids.at(-1)!), 'the newest is kept');
    const runsOf = new Set((await ws.commands()).map((info) => info.pipelineId));
    assert.ok(!runsOf.has(ids[0]!), 'its nodes\' runs are let go too');
    assert.ok(runsOf.has(ids.at(-1)!));
  });

  test('with keepFinished 0, a finished command can still be restarted while other jobs come and go', async () => {
    const rt = await startRuntime({ keepFinished: 0 });
    const ws = await rt.createWorkspace({ label: 'restart-kept' });
    const first = await ws.run({ label: 'again', exec: '/bin/echo', argv: ['again'] });
    await untilFinished(first);
    const restarted = ws.restartCommand('again');
    // Added while the restart is under way: with a bound of 0 it forgets every finished command it may.
    const other = await ws.run({ label: 'other', exec: '/bin/true' });
    const second = await restarted;
    assert.equal(second.label, 'again');
    await untilFinished(second);
    await untilFinished(other);
    assert.equal((await ws.logs(second.id)).toString(), 'again\n');
  });

  test('keepFinished must be a whole number >= 0', async () => {
    for (const bad of [-1, 1.5, '10']) {
      await assert.rejects(
        createRuntime({ keepFinished: bad as number }),
        (error: unknown) => isShumaError(error) && error.code === 'INVALID_ARGUMENT' && /keepFinished/.test(error.message),
      );
    }
  });

  test('shuma daemon --keep-finished N bounds what each workspace keeps; a bad N is a usage error', async () => {
    const daemon = await startDaemon({ args: ['--keep-finished', '1'] });
    try {
      const labels = ['j1', 'j2', 'j3', 'j4', 'j5', 'j6'];
      const commandsOf = async () => (await cliJson<PsResult>(['ps'], daemon.env)).workspaces.find((w) => w.label === 'jobs')?.commands ?? [];
      for (const label of labels) {
        await cliJson(['run', '-w', 'jobs', '--label', label, '--', 'true'], daemon.env);
        await pollCli(commandsOf, (rows) => rows.some((row) => row.label === label && !row.alive && row.exitStatus === 0), `${label} finished`);
      }
      const listed = (await commandsOf()).map((row) => row.label);
      // The bound (1) plus its slack (an eighth of it, at least 1) plus the newest, before the next trim.
      assert.ok(listed.length <= 3, `listed: ${listed.join(' ')}`);
      assert.ok(!listed.includes('j1'), 'the oldest is forgotten');
      assert.ok(listed.includes('j6'), 'the newest is kept');
    } finally {
      await daemon.stop('SIGTERM');
    }
    for (const bad of ['-1', '1.5', 'many']) {
      const refused = await cli(['daemon', `--keep-finished=${bad}`], { ...daemon.env, SHUMA_HOME: daemon.home + '-refused' });
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /--keep-finished must be a whole number >= 0/);
    }
  });
});
