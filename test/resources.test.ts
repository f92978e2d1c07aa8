import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { capturingLogger, fixture, pollUntil, quotaKilledWorkspace, startRuntime, stateOf, waitFor, waitForOutput } from './helpers.js';

const PYTHON = '/usr/bin/python3';

function procCpuUsec(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

function procRssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'latin1').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) * 1024;
}

describe('rlimits at spawn (limits)', () => {
  test('RLIMIT_NOFILE is in force when the program starts', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'nofile', limits: { nofile: 64 } });
    const cmd = await ws.run({ exec: 'sh', argv: ['-c', 'ulimit -n; grep "Max open files" /proc/self/limits'] });
    assert.equal((await cmd.exited).status, 0);
    const [soft, line] = (await ws.logs(cmd.id)).toString().split('\n');
    assert.equal(soft, '64');
    assert.match(line!, /Max open files\s+64\s+64/);
  });

  test('RLIMIT_AS makes an allocation fail (ENOMEM), it is no OOM kill', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'as', limits: { memoryBytes: 64 * 1024 * 1024 } });
    const cmd = await ws.run({ exec: PYTHON, argv: ['-c', 'b = bytearray(200 * 1024 * 1024)'] });
    const exit = await cmd.exited;
    assert.equal(exit.status, 1);
    assert.equal(exit.signal, null);
    assert.match((await ws.logs(cmd.id, { stream: 'stderr' })).toString(), /MemoryError/);
  });

  test('cpuSeconds ends a CPU burner with SIGXCPU', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'cpu', limits: { cpuSeconds: 1 } });
    const cmd = await ws.run({ exec: 'sh', argv: ['-c', 'while :; do :; done'] });
    const exit = await cmd.exited;
    assert.ok(exit.signal === 'SIGXCPU' || exit.signal === 'SIGKILL', String(exit.signal));
  });

  test('limits.nproc as root without a cgroup is a warning: RLIMIT_NPROC does not bind root', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('only root is exempt from RLIMIT_NPROC');
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'nproc', limits: { nproc: 5 } });
    assert.ok(ws.warnings.some((w) => /RLIMIT_NPROC to root/.test(w)), ws.warnings.join('\n'));
  });
});

describe('stats from /proc (no cgroup)', () => {
  test('a CPU burner and a known allocation agree with /proc; descendants count', async () => {
    const rt = await startRuntime({ statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'measured' });
    const burner = await ws.run({ exec: 'sh', argv: ['-c', 'while :; do :; done'] });
    const holder = await ws.run({ exec: PYTHON, argv: [fixture('alloc.py'), '64'] });
    await waitForOutput(ws, holder.id, 'ready');
    // A grandchild: the sampler must count descendants, not only the runs.
    const parent = await ws.run({ exec: 'sh', argv: ['-c', 'sleep 1000 & echo started; wait'] });
    await waitForOutput(ws, parent.id, 'started');

    const first = await ws.stats();
    assert.equal(first.source, 'proc');
    assert.equal(first.cpuPercent, null, 'no rate on the first sample');
    assert.equal(first.commandsAlive, 3);
    assert.equal(first.commandsTotal, 3);
    assert.ok(first.processes >= 4, `processes ${first.processes}`);

    const cpuBefore = procCpuUsec(burner.pid);
    // CPU time accrues in 10 ms ticks: wait for some to pass, by watching /proc itself.
    while (procCpuUsec(burner.pid) - cpuBefore < 300_000) await new Promise((r) => setImmediate(r));
    const second = await ws.stats();
    const ourCpu = procCpuUsec(burner.pid) + procCpuUsec(holder.pid);
    assert.ok(second.cpuPercent !== null && second.cpuPercent > 0, `cpuPercent ${second.cpuPercent}`);
    // The sampler's CPU includes every process; the burner dominates. Within 10 % of /proc's own figure.
    assert.ok(Math.abs(second.cpuUsec! - ourCpu) <= 0.1 * ourCpu + 50_000, `${second.cpuUsec} vs ${ourCpu}`);
    const rss = procRssBytes(holder.pid) + procRssBytes(burner.pid);
    assert.ok(second.rssBytes! >= rss * 0.9, `rss ${second.rssBytes} vs at least ${rss}`);
    assert.ok(second.rssBytes! >= 64 * 1024 * 1024, 'the 64 MiB allocation is resident');

    const history = await ws.statsHistory();
    assert.deepEqual(history.map((s) => s.at), [first.at, second.at]);
    assert.deepEqual(await ws.statsHistory(1), [second]);
  });

  test('the history keeps the last 64 samples', async () => {
    const rt = await startRuntime({ statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'ring' });
    for (let i = 0; i < 70; i++) await ws.stats();
    assert.equal((await ws.statsHistory()).length, 64);
    assert.equal((await ws.statsHistory(5)).length, 5);
  });
});

describe('quotas (seed 20, 21)', () => {
  test("quota() reports breaches in words; 'log' warns once per breach episode", async () => {
    const { logger, records } = capturingLogger('info');
    const rt = await startRuntime({ logger, statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'crowded', limits: { nproc: 2 }, quota: { nproc: 'log' } });
    const sleepers = [];
    for (let i = 0; i < 3; i++) sleepers.push(await ws.run({ exec: fixture('forever.sh') }));
    for (const s of sleepers) await waitForOutput(ws, s.id, 'ready');
    const report = await ws.quota();
    assert.equal(report.nprocLimit, 2);
    assert.equal(report.memLimit, null);
    assert.deepEqual(report.breaches, ['nproc: 3 alive > 2 limit']);
    await ws.stats();
    await ws.stats();
    const warned = () => records.filter((r) => r.msg === 'quota breach: nproc: 3 alive > 2 limit');
    await pollUntil<number>(
      () => warned().length,
      (n) => n >= 1,
      'the breach warning',
    );
    assert.equal(warned().length, 1, 'once per episode, not once per sample');
    assert.equal(warned()[0]!.used, 3);
    assert.equal(warned()[0]!.limit, 2);
    assert.equal(stateOf(ws.getSnapshot()), 'running', "'log' only logs");
    // The episode ends when the use falls back, and a new one warns again.
    process.kill(sleepers[0]!.pid, 'SIGKILL');
    await sleepers[0]!.exited;
    assert.deepEqual((await ws.quota()).breaches, []);
    const fourth = await ws.run({ exec: fixture('forever.sh') });
    await waitForOutput(ws, fourth.id, 'ready');
    await ws.stats();
    await pollUntil<number>(
      () => warned().length,
      (n) => n >= 2,
      'the second episode',
    );
  });

  test("'kill' stops the workspace at once and its snapshot says why", async () => {
    const { rt, ws, a, b, final } = await quotaKilledWorkspace('strict');
    assert.equal(final.context.stopReason, 'quota');
    assert.equal(final.context.quotaBreach, 'nproc: 2 alive > 1 limit');
    assert.equal(final.context.graceMs, 0);
    assert.equal((await a.exited).signal, 'SIGKILL');
    assert.equal((await b.exited).signal, 'SIGKILL');
    assert.equal(rt.workspace(ws.id), undefined);
  });

  test('the quota actor samples on its own at statsIntervalMs', async () => {
    const rt = await startRuntime({ statsIntervalMs: 20 });
    const ws = await rt.createWorkspace({ label: 'sampled', limits: { nproc: 1 }, quota: { nproc: 'kill' } });
    const stopped = waitFor(ws.subscribe.bind(ws), (s) => stateOf(s) === 'stopped', 'the quota stop by sampling');
    await ws.run({ exec: fixture('forever.sh') });
    await ws.run({ exec: fixture('forever.sh') });
    assert.equal((await stopped).context.stopReason, 'quota');
  });

  test('background rounds skip idle workspaces, and still catch a breach in one that was idle', async () => {
    const rt = await startRuntime({ statsIntervalMs: 20 });
    const idle = await Promise.all(Array.from({ length: 50 }, (_, i) => rt.createWorkspace({ label: `idle-${i}` })));
    const strict = await rt.createWorkspace({ label: 'strict-after-idling', limits: { nproc: 1 }, quota: { nproc: 'kill' } });
    // A workspace with a live process is sampled every round: its history shows rounds passing.
    const ticker = await rt.createWorkspace({ label: 'ticker' });
    await ticker.run({ exec: fixture('forever.sh') });
    const rounds = async (n: number) => {
      const from = (await ticker.statsHistory()).length;
      await pollUntil(() => ticker.statsHistory(), (history) => history.length >= Math.min(from + n, 64), `${n} sampling rounds`);
    };
    await rounds(3);
    for (const ws of [...idle, strict]) assert.deepEqual(await ws.statsHistory(), [], `${ws.label} has nothing to sample`);
    // Idle for several rounds, then over its limit: the next rounds see it.
    const stopped = waitFor(strict.subscribe.bind(strict), (s) => stateOf(s) === 'stopped', 'the quota stop by sampling');
    await strict.run({ exec: fixture('forever.sh') });
    await strict.run({ exec: fixture('forever.sh') });
    const final = await stopped;
    assert.equal(final.context.stopReason, 'quota');
    assert.equal(final.context.quotaBreach, 'nproc: 2 alive > 1 limit');
    // Asked for, an idle workspace is still measured.
    assert.equal((await idle[0]!.stats()).processes, 0);
    assert.equal((await idle[0]!.statsHistory()).length, 1);
  });
});
