// What ended is still listed after `shuma kill`/SIGTERM and a new daemon on the same state: a
// finished command with its exit, its why trail and its logs; a finished pipeline with its nodes'
// exits. A real daemon, stopped and started again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LogsEvent, PsResult, RunResult, WhyResult } from '../src/protocol/control-results.js';
import { cli, cliJson, cliStream, pollCli, startDaemon } from './daemon-helpers.js';

test('after a daemon restart, ps still lists finished commands and pipelines with their exits; why and logs still answer', async () => {
  const daemon = await startDaemon();
  const once = await cliJson<RunResult>(['run', '-w', 'hist', '--label', 'once', '--', 'sh', '-c', 'echo bye; exit 4'], daemon.env);
  await cliJson(['pipeline', 'run', '-w', 'hist', '--label', 'count', '--', 'seq', '1', '3', '|', 'wc', '-l'], daemon.env);
  const ended = (r: PsResult) =>
    r.workspaces[0]?.commands.find((c) => c.label === 'once')?.state === 'exited' && r.pipelines.find((p) => p.label === 'count')?.state === 'succeeded';
  const before = await pollCli(() => cliJson<PsResult>(['ps'], daemon.env), ended, 'once exited and count succeeded');
  const whyBefore = await cliJson<WhyResult>(['why', 'hist/once'], daemon.env);
  assert.ok(whyBefore.entries.some((e) => e.text === 'exited 4'));
  assert.equal(await daemon.stop('SIGTERM'), 0);

  const again = await startDaemon({ home: daemon.home });
  try {
    const after = await cliJson<PsResult>(['ps'], again.env);
    const row = after.workspaces.find((w) => w.label === 'hist')!.commands.find((c) => c.label === 'once');
    assert.ok(row, 'the finished command is listed');
    assert.deepEqual([row.id, row.state, row.exitStatus, row.pid], [once.command.id, 'exited', 4, null]);
    const pipe = after.pipelines.find((p) => p.label === 'count');
    assert.ok(pipe, 'the finished pipeline is listed');
    assert.equal(pipe.state, 'succeeded');
    assert.deepEqual(pipe.nodes.map((n) => [n.label, n.exitStatus]), before.pipelines.find((p) => p.label === 'count')!.nodes.map((n) => [n.label, n.exitStatus]));
    const why = await cliJson<WhyResult>(['why', 'hist/once'], again.env);
    assert.deepEqual(why.entries, whyBefore.entries);
    assert.equal((await cli(['logs', 'hist/once'], again.env)).stdout, 'bye\n');
    assert.equal((await cli(['logs', 'count/wc'], again.env)).stdout.trim(), '3', 'a node of a finished pipeline: from its log file');
  } finally {
    assert.equal(await again.stop('SIGTERM'), 0);
  }
});

test('logs -f follows a command across `shuma restart` (a stop to run again is not its end), ends at Ctrl-C, says so when the daemon stops under it, and after it shows the files and ends', async () => {
  const daemon = await startDaemon();
  let stopped = false;
  try {
    await cliJson<RunResult>(['run', '-w', 'fol', '--label', 'svc', '--', 'sh', '-c', 'echo run-$$; exec sleep 1000'], daemon.env);
    const f = cliStream(['logs', '-f', 'fol/svc'], daemon.env);
    const ctrlC = cliStream(['logs', '-f', 'fol/svc'], daemon.env);
    const firstLine = await f.waitFor(/^run-\d+$/);
    const restarted = await cli(['restart', 'fol/svc'], daemon.env);
    assert.equal(restarted.code, 0, restarted.stderr);
    const secondLine = await f.waitFor(new RegExp(`^run-(?!${firstLine.slice(4)}$)\\d+$`));
    assert.notEqual(secondLine, firstLine);
    assert.equal(f.child.exitCode, null, '-f goes on after the restart');
    // Ctrl-C ends -f cleanly. Sent while the command still runs: -f cannot have ended by itself,
    // so the signal always finds the CLI's handler (not a process already on its way out).
    await ctrlC.waitFor(new RegExp(`^${secondLine}$`));
    ctrlC.child.kill('SIGINT');
    assert.equal(await ctrlC.exited, 0, ctrlC.stderr());
    assert.equal(await daemon.stop('SIGTERM'), 0);
    stopped = true;
    assert.equal(await f.exited, 3);
    assert.match(f.stderr(), /NO_DAEMON: the daemon stopped, and -f with it/);

    // A new daemon: the daemon's stop stopped the command for good, so -f on it shows what it
    // wrote, from its files, and ends by itself, saying why.
    const again = await startDaemon({ home: daemon.home });
    try {
      const g = cliStream(['logs', '-f', '--json', 'fol/svc'], again.env);
      assert.equal(await g.exited, 0, g.stderr());
      const events = g.lines.map((line) => JSON.parse(line) as LogsEvent & { ended?: string });
      const text = events.map((e) => (e.data === undefined ? '' : Buffer.from(e.data).toString())).join('');
      assert.equal(text, `${firstLine}\n${secondLine}\n`, 'both runs, from the files');
      assert.equal(events.at(-1)?.ended, 'the command ended');
    } finally {
      assert.equal(await again.stop('SIGTERM'), 0);
    }
  } finally {
    if (!stopped) await daemon.stop('SIGTERM');
  }
});

test('a run the daemon stop ends is in the history after it: ps, describe and why show its exit, and logs -f of its command shows the files and ends', async () => {
  const daemon = await startDaemon();
  let stopped = false;
  try {
    const run = await cliJson<RunResult>(['run', '-w', 'last', '--label', 'only', '--', 'sh', '-c', 'echo only-$$; exec sleep 1000'], daemon.env);
    const f = cliStream(['logs', '-f', 'last/only'], daemon.env);
    const line = await f.waitFor(/^only-\d+$/);
    assert.equal(await daemon.stop('SIGTERM'), 0);
    stopped = true;
    assert.equal(await f.exited, 3);

    const again = await startDaemon({ home: daemon.home });
    try {
      const ps = await cliJson<PsResult>(['ps'], again.env);
      const row = ps.workspaces.find((w) => w.label === 'last')?.commands.find((c) => c.label === 'only');
      assert.ok(row, 'the command whose only run the stop ended is listed');
      assert.deepEqual([row.id, row.pid, row.exitSignal], [run.command.id, null, 'SIGTERM'], 'with the exit the stop gave it');
      const described = await cliJson<{ runs: Array<{ id: string; exit: { signal: string | null } | null }> }>(['describe', 'last/only'], again.env);
      assert.deepEqual(described.runs.map((r) => [r.id, r.exit?.signal]), [[run.command.id, 'SIGTERM']]);
      const why = await cliJson<WhyResult>(['why', 'last/only'], again.env);
      assert.ok(why.entries.length > 0, 'its trail answers');
      const g = cliStream(['logs', '-f', '--json', 'last/only'], again.env);
      assert.equal(await g.exited, 0, g.stderr());
      const events = g.lines.map((l) => JSON.parse(l) as LogsEvent & { ended?: string });
      const text = events.map((e) => (e.data === undefined ? '' : Buffer.from(e.data).toString())).join('');
      assert.equal(text, `${line}\n`, 'its output, from the files');
      assert.equal(events.at(-1)?.ended, 'the command ended');
    } finally {
      assert.equal(await again.stop('SIGTERM'), 0);
    }
  } finally {
    if (!stopped) await daemon.stop('SIGTERM');
  }
});
