import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import type { SnapshotData } from '../src/host/persistence/snapshot-data.js';
import { readSnapshotFile } from '../src/host/persistence/snapshot-file.js';
import { knownRunIds } from '../src/host/persistence/restore.js';
import { coreOf } from '../src/host/runtime.js';
import { createRuntime, type Runtime } from '../src/index.js';
import { ManualClock } from '../src/testing/index.js';
import { startChildRuntime } from './child-runtime.js';
import { isAlive, pollUntil, processesMentioning, startRuntime, stateOf, waitFor, waitForOutput } from './helpers.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function stateDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'shuma-state-'));
  dirs.push(dir);
  return path.join(dir, 'state');
}

function snapshotFile(dir: string): string {
  return path.join(dir, 'shuma.snapshot');
}

describe('snapshot round trip (seed 2, 18, 22)', () => {
  test('workspaces, supervisors, pipelines and saved pipelines come back with the same ids', async () => {
    const dir = stateDir();
    const marker = `shuma-roundtrip-${process.pid}`;
    const rt1 = await createRuntime({ stateDir: dir, workers: 1 });
    const a = await rt1.createWorkspace({ label: 'a', ttlMs: 3_600_000, env: { K: 'v' } });
    const b = await rt1.createWorkspace({ label: 'b' });
    const service = await a.run({ exec: 'sh', argv: ['-c', `echo up; sleep 1000; : ${marker}`], label: 'service', restart: { onFailure: true, backoffMs: 10 } });
    await waitForOutput(a, service.id, 'up');
    const once = await a.run({ exec: 'sh', argv: ['-c', `sleep 1000; : ${marker}`], label: 'once' });
    const pipeline = await rt1.runPipeline({
      label: 'flaky-pipe',
      workspace: b.id,
      nodes: [
        { label: 'fail', exec: 'sh', argv: ['-c', 'exit 1'] },
        { label: 'cat', exec: 'cat' },
      ],
      edges: [{ from: 'fail', to: 'cat' }],
      restart: { onFailure: true, backoffMs: 1, maxBackoffMs: 1, maxRestarts: 1_000_000 },
    });
    await waitFor(pipeline.subscribe.bind(pipeline), (s) => Number(s.context.restarts) >= 2, 'two pipeline restarts');
    await rt1.savePipeline('zeta', { label: 'z', workspace: b.id, nodes: [{ label: 'x', exec: 'true' }], edges: [] });
    await rt1.savePipeline('alpha', { label: 'a', workspace: b.id, nodes: [{ label: 'x', exec: 'true' }], edges: [] });
    const ttlDeadline = a.getSnapshot().context.ttlDeadline;
    await rt1.shutdown({ graceMs: 0 });
    assert.deepEqual(processesMentioning(marker), [], 'shutdown stops everything');
    assert.equal(statSync(snapshotFile(dir)).mode & 0o777, 0o600);

    const rt2 = await createRuntime({ stateDir: dir, workers: 1 });
    try {
      assert.deepEqual(rt2.warnings, []);
      const listed = await rt2.listWorkspaces();
      assert.deepEqual(listed.map((w) => [w.id, w.label]).sort(), [[a.id, 'a'], [b.id, 'b']].sort());
      const a2 = rt2.workspace(a.id)!;
      assert.deepEqual(a2.spec, a.spec);
      assert.equal(a2.getSnapshot().context.ttlDeadline, ttlDeadline, 'the TTL deadline is absolute and kept');
      assert.deepEqual(await rt2.listSavedPipelines(), ['alpha', 'zeta']);
      // The supervised command starts again (not counted as a restart); the one-shot one does not.
      const runs = await pollUntil(
        () => a2.commands(),
        (list) => list.some((c) => c.label === 'service' && c.alive),
        'the service back',
      );
      assert.equal(runs.filter((c) => c.alive).map((c) => c.label).join(), 'service');
      // Its run the shutdown ended is listed too, ended: the one back is the live one.
      const back = runs.find((c) => c.label === 'service' && c.alive);
      assert.equal(back?.restarts, 0);
      assert.equal(back?.commandKey, service.commandKey);
      await waitForOutput(a2, back!.id, 'up');
      // The pipeline supervisor keeps its count and goes on.
      const p2 = rt2.pipeline(pipeline.id)!;
      assert.ok(p2, 'the pipeline is back under its id');
      const restartsBefore = Number(pipeline.getSnapshot()!.context.restarts);
      const s = await waitFor(p2.subscribe.bind(p2), (snap) => Number(snap.context.restarts) > restartsBefore, 'the count going on from where it was');
      assert.ok(Number(s.context.restarts) > restartsBefore);
      assert.equal(isAlive(once.pid), false);
    } finally {
      await rt2.shutdown({ graceMs: 0 });
    }
    assert.deepEqual(processesMentioning(marker), []);
  });

  test('nothing is written when nothing changed (mtime)', async () => {
    const dir = stateDir();
    const rt = await startRuntime({ stateDir: dir });
    const ws = await rt.createWorkspace({ label: 'still' });
    const core = coreOf(rt);
    await core.state!.flush();
    const before = statSync(snapshotFile(dir)).mtimeMs;
    const writes = core.state!.writes;
    await rt.health();
    await rt.listWorkspaces();
    await core.state!.flush();
    assert.equal(core.state!.writes, writes);
    assert.equal(statSync(snapshotFile(dir)).mtimeMs, before);
    await ws.run({ exec: '/bin/true' });
    await core.state!.flush();
    assert.ok(core.state!.writes > writes);
  });
});

describe('a command saved while not ready yet (up) or being ended (ending)', () => {
  test('restored after a shutdown, a supervised command up (its probe never passed) starts again, not waiting on a run gone', async () => {
    const dir = stateDir();
    const marker = `shuma-up-${process.pid}`;
    const rt1 = await createRuntime({ stateDir: dir, workers: 1, statsIntervalMs: 0 });
    const ws = await rt1.createWorkspace({ label: 'up' });
    const first = await ws.run({ exec: 'sh', argv: ['-c', `sleep 1000; : ${marker}`], label: 'slow', restart: { onFailure: true, backoffMs: 1 }, ready: { exec: ['false'], intervalMs: 50 } });
    await waitFor(first.subscribe.bind(first), (s) => stateOf(s) === 'up', 'the command up, not ready');
    await rt1.shutdown({ graceMs: 0 });
    const saved = await readSnapshotFile(dir);
    assert.equal(saved.status, 'ok');
    // Its run is in the file as a process its actor knows (the one cut), though not ready.
    const record = (saved.data as SnapshotData).workspaces[0]!;
    assert.deepEqual(record.processes.map((p) => p.runId), [first.id]);

    const rt2 = await createRuntime({ stateDir: dir, workers: 1, statsIntervalMs: 0 });
    try {
      const ws2 = rt2.workspace(ws.id)!;
      const back = await pollUntil(() => ws2.commands(), (list) => list.some((c) => c.label === 'slow' && c.alive), 'the command started again');
      assert.notEqual(back.find((c) => c.alive)!.id, first.id);
      assert.equal(back.find((c) => c.alive)!.restarts, 0, 'started again as after a restart, not counted as a failure');
    } finally {
      await rt2.shutdown({ graceMs: 0 });
    }
    assert.deepEqual(processesMentioning(marker), []);
  });
});

describe('timers across a restart', () => {
  test('a TTL that ran out while the runtime was down stops that workspace at once', async () => {
    const dir = stateDir();
    const clock = new ManualClock(1_800_000_000_000);
    const rt1 = await createRuntime({ stateDir: dir, workers: 1, clock });
    const ws = await rt1.createWorkspace({ label: 'short-lived', ttlMs: 5_000 });
    const keep = await rt1.createWorkspace({ label: 'long-lived', ttlMs: 60_000 });
    await rt1.shutdown();
    const later = new ManualClock(1_800_000_000_000 + 10_000);
    const rt2 = await createRuntime({ stateDir: dir, workers: 1, clock: later });
    try {
      const restored = await pollUntil<string[]>(
      async () => (await rt2.listWorkspaces()).map((w) => w.id),
      (ids) => !ids.includes(ws.id),
        'the expired workspace gone',
      );
      assert.deepEqual(restored, [keep.id]);
      assert.equal(rt2.workspace(keep.id)!.getSnapshot().context.ttlDeadline, 1_800_000_000_000 + 60_000);
    } finally {
      await rt2.shutdown();
    }
  });

  test('a backoff that ran out while the runtime was down relaunches at once; one still pending waits', async () => {
    const dir = stateDir();
    const clock = new ManualClock(1_800_000_000_000);
    const rt1 = await createRuntime({ stateDir: dir, workers: 1, clock });
    const ws = await rt1.createWorkspace({ label: 'crashy' });
    const cmd = await ws.run({ exec: '/bin/false', restart: { onFailure: true, backoffMs: 5_000 } });
    await waitFor(cmd.subscribe.bind(cmd), (s) => stateOf(s) === 'backoff', 'the backoff');
    await rt1.shutdown();
    // 3 s later: 2 s of the backoff are left.
    const later = new ManualClock(1_800_000_000_000 + 3_000);
    const rt2 = await createRuntime({ stateDir: dir, workers: 1, clock: later });
    try {
      const ws2 = rt2.workspace(ws.id)!;
      // The run that failed before the restart is listed with its exit (kept in the snapshot).
      const before = await ws2.commands();
      assert.deepEqual(before.map((c) => [c.id, c.alive, c.exitStatus]), [[cmd.id, false, 1]]);
      const relaunches = async () => (await ws2.commands()).filter((c) => c.id !== cmd.id).length;
      assert.equal(await relaunches(), 0, 'still waiting');
      await later.advance(1_999);
      assert.equal(await relaunches(), 0, 'one ms short');
      await later.advance(1);
      await pollUntil<number>(relaunches, (n) => n >= 1, 'the relaunch');
    } finally {
      await rt2.shutdown();
    }
  });
});

describe('a snapshot that cannot be read', () => {
  for (const [what, bytes] of [
    ['a garbage file', Buffer.from('this is not msgpack at all \u0000\u00ff')],
    ['a truncated file', null],
  ] as const) {
    test(`${what}: kept aside, reported, the runtime starts empty`, async () => {
      const dir = stateDir();
      if (bytes === null) {
        const rt1 = await createRuntime({ stateDir: dir, workers: 1 });
        await rt1.createWorkspace({ label: 'x' });
        await rt1.shutdown();
        const whole = readFileSync(snapshotFile(dir));
        writeFileSync(snapshotFile(dir), whole.subarray(0, Math.floor(whole.length / 2)));
      } else {
        const rt0 = await createRuntime({ stateDir: dir, workers: 1 });
        await rt0.shutdown();
        writeFileSync(snapshotFile(dir), bytes);
      }
      const rt = await createRuntime({ stateDir: dir, workers: 1 });
      try {
        assert.equal(rt.warnings.length, 1);
        assert.match(rt.warnings[0]!, /could not be read .* kept as .*shuma\.snapshot\.corrupt-/);
        assert.deepEqual(await rt.listWorkspaces(), []);
        assert.ok(readdirSync(dir).some((name) => name.startsWith('shuma.snapshot.corrupt-')));
      } finally {
        await rt.shutdown();
      }
    });
  }
});

describe('one runtime per stateDir', () => {
  test('a second runtime on the same directory fails with a clear error; after shutdown it opens', async () => {
    const dir = stateDir();
    const first = await createRuntime({ stateDir: dir, workers: 1 });
    await assert.rejects(createRuntime({ stateDir: dir, workers: 1 }), (error: Error & { code?: string }) => {
      assert.match(error.message, new RegExp(`${path.basename(dir)}.*${process.pid}|${process.pid}.*${path.basename(dir)}`));
      return true;
    });
    await first.shutdown();
    const second = await createRuntime({ stateDir: dir, workers: 1 });
    await second.shutdown();
  });
});

describe("the 'adopt' policy", () => {
  const crashChild = path.join(path.dirname(fileURLToPath(import.meta.url)), 'crash-child.js');

  test('processes of the crashed runtime are watched until they exit; a supervised one then starts again', async () => {
    const dir = stateDir();
    const marker = `shuma-adopt-${process.pid}`;
    const { child, release } = startChildRuntime(crashChild, [dir, marker, 'adopt'], dir);
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    // Until the snapshot on disk holds a live command of its own (not a pipeline node) to adopt:
    // one its actor already knows (a run the snapshot caught before its SPAWNED is not adopted).
    await pollUntil(
      () => readSnapshotFile(dir),
      (read) =>
        read.status === 'ok' &&
        (read.data as SnapshotData).workspaces.some((w) =>
          w.processes.some(
            (p) => p.label === 'sh' && p.pipelineId === null && knownRunIds(w.actor).has(p.runId) && processesMentioning(marker).includes(p.pid),
          ),
        ),
      'a snapshot holding a running command',
      20,
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const before = Date.now();
    const rt = await createRuntime({ stateDir: dir, workers: 1, statsIntervalMs: 0, orphans: 'adopt' });
    try {
      assert.ok(rt.warnings.some((w) => /were adopted/.test(w)), rt.warnings.join('; '));
      const adopted = [];
      for (const info of await rt.listWorkspaces()) {
        const ws = rt.workspace(info.id)!;
        for (const c of await ws.commands()) if (c.alive && c.startedAt < before) adopted.push({ ws, c });
      }
      assert.ok(adopted.length > 0, 'some runs were adopted');
      const { ws, c } = adopted.find((a) => a.c.label === 'sh' && a.c.pipelineId === undefined)!;
      process.kill(c.pid, 'SIGKILL');
      const relaunched = await pollUntil(
        () => ws.commands(),
        // Both: the adopted run seen gone (a poll of /proc) and a later run of its command alive.
        (list) => list.some((r) => r.id === c.id && !r.alive) && list.some((r) => r.commandKey === c.commandKey && r.id !== c.id && r.alive),
        'the adopted run gone and its command relaunched',
      );
      const gone = relaunched.find((r) => r.id === c.id)!;
      assert.deepEqual([gone.alive, gone.exitStatus, gone.reason], [false, -1, 'exit-unknown']);
    } finally {
      await rt.shutdown({ graceMs: 0 });
    }
    assert.deepEqual(processesMentioning(marker), []);
    release();
  });
});

describe('a worker thread that dies', () => {
  test('its actors come back on a new thread from their last state; the event is counted', async () => {
    const rt = await startRuntime({ workers: 1, statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'survivor', ttlMs: 3_600_000 });
    const service = await ws.run({ exec: 'sh', argv: ['-c', 'echo up; sleep 1000'], restart: { onFailure: true, backoffMs: 1 } });
    await waitForOutput(ws, service.id, 'up');
    const crashloop = await ws.run({ exec: '/bin/false', restart: { onFailure: true, backoffMs: 1, maxBackoffMs: 5, maxRestarts: 1_000_000 } });
    await waitFor(crashloop.subscribe.bind(crashloop), (s) => Number(s.context.restarts) >= 2, 'a few restarts');
    const ttlDeadline = ws.getSnapshot().context.ttlDeadline;
    const thread = coreOf(rt).workerThreads[0] as { terminate(): Promise<number> };
    await thread.terminate();
    await pollUntil<number>(
      async () => (await rt.health()).workerRestarts,
      (n) => n === 1,
      'the worker restart counted',
    );
    // The crash loop goes on from its count, on the new thread.
    const count = Number(crashloop.getSnapshot()!.context.restarts);
    await waitFor(crashloop.subscribe.bind(crashloop), (s) => Number(s.context.restarts) >= count + 2, 'restarts after re-hosting');
    assert.equal(ws.getSnapshot().context.ttlDeadline, ttlDeadline);
    assert.equal(isAlive(service.pid), true, 'the processes never noticed');
    // The re-hosted workspace still answers: new commands, a clean stop.
    const echo = await ws.run({ exec: 'echo', argv: ['after'] });
    await echo.exited;
    assert.equal((await ws.logs(echo.id)).toString(), 'after\n');
    const result = await ws.stop({ graceMs: 100 });
    assert.ok(result.reaped >= 1);
    assert.equal(isAlive(service.pid), false);
  });

  test('a child that changed alone (its own persisted snapshot sent, not the tree) comes back as it last was', async () => {
    const rt = await startRuntime({ workers: 1, statsIntervalMs: 0 });
    const scratch = mkdtempSync(path.join(tmpdir(), 'shuma-alone-'));
    try {
      const ws = await rt.createWorkspace({ label: 'siblings', cwd: scratch });
      for (let i = 0; i < 3; i++) await ws.run({ exec: 'sleep', argv: ['1000'] });
      // Fails three times, then stays up: its restarts change only itself, never the workspace.
      const flaky = await ws.run({
        exec: '/bin/sh',
        argv: ['-c', 'n=$(( $(cat n 2>/dev/null || echo 0) + 1 )); echo $n > n; [ $n -gt 3 ] && exec sleep 1000; exit 1'],
        restart: { onFailure: true, backoffMs: 1 },
      });
      const up = await waitFor(
        flaky.subscribe.bind(flaky),
        (s) => stateOf(s) === 'running' && s.context.restarts === 3,
        'running after 3 restarts',
      );
      const entry = coreOf(rt).registry.get(ws.id)!;
      const persistedChild = () =>
        (entry.persisted as { children: Record<string, { snapshot: { value: unknown; context: { restarts: number } } }> }).children[flaky.commandKey]!.snapshot;
      await pollUntil(persistedChild, (p) => p.value === 'running' && p.context.restarts === 3, 'the persisted tree up to date');
      const runsBefore = (await ws.commands()).length;
      const thread = coreOf(rt).workerThreads[0] as { terminate(): Promise<number> };
      await thread.terminate();
      await pollUntil<number>(async () => (await rt.health()).workerRestarts, (n) => n === 1, 'the worker restart counted');
      const echo = await ws.run({ exec: 'echo', argv: ['still here'] });
      await echo.exited;
      // Re-hosted from a tree that held its last state: still the same run, nothing relaunched.
      assert.equal(isAlive(up.context.pid as number), true);
      assert.equal((await ws.commands()).length, runsBefore + 1);
      assert.deepEqual([stateOf(flaky.getSnapshot()), flaky.getSnapshot()!.context.restarts], ['running', 3]);
      await ws.stop({ graceMs: 0 });
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
