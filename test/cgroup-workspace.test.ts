import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';
import { detectCgroups } from '../src/host/cgroup/cgroups.js';
import { fixture, startRuntime, waitForOutput, waitGone, stateOf, waitFor } from './helpers.js';

const support = detectCgroups();
const skip = process.getuid?.() !== 0 ? 'needs root to write cgroups' : support.version === null ? `no cgroups here: ${support.reason}` : false;

describe('workspaces with a cgroup of their own', { skip }, () => {
  test('a memory hog under a 20 MiB limit is OOM-killed and reported as oom', async () => {
    const rt = await startRuntime({ statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'hog', cgroup: true, limits: { memoryBytes: 20 * 1024 * 1024 } });
    assert.deepEqual(ws.warnings, []);
    const hog = await ws.run({ exec: '/usr/bin/python3', argv: ['-c', 'b = bytearray(200 * 1024 * 1024)'] });
    assert.deepEqual(await hog.exited, { code: null, signal: 'SIGKILL', status: 137 });
    const [info] = await ws.commands();
    assert.equal(info?.reason, 'oom');
    assert.equal((await ws.quota()).oomKills, 1);
    const stats = await ws.stats();
    assert.equal(stats.source, 'cgroup');
  });

  test('every command is in the cgroup, with its limits, before its program runs', async () => {
    const rt = await startRuntime({ statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'placed', cgroup: true, limits: { nofile: 100 } });
    // The program's first act is to read where it is: nothing may have moved it since.
    const cmd = await ws.run({ exec: '/bin/cat', argv: ['/proc/self/cgroup', '/proc/self/limits'] });
    await cmd.exited;
    const out = (await ws.logs(cmd.id)).toString();
    const memoryLine = out.split('\n').find((l) => /:memory:|^0::/.test(l)) ?? '';
    assert.ok(memoryLine.endsWith(`/${ws.id}`), memoryLine);
    assert.match(out, /Max open files\s+100\s+100/);
  });

  test('a fork bomb under nproc 32 stays contained; the runtime stays responsive; stop empties the cgroup', async () => {
    const rt = await startRuntime({ statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'bomb', cgroup: true, limits: { nproc: 32 } });
    // perl: dash gives up at the first failed fork, perl keeps trying.
    const bomb = await ws.run({ exec: '/usr/bin/perl', argv: ['-e', 'print "go\\n"; $|=1; while (1) { fork; select(undef,undef,undef,0.01) }'] });
    await waitForOutput(ws, bomb.id, 'go');
    const stats = await ws.stats();
    assert.ok(stats.processes <= 32, `processes ${stats.processes}`);
    // Responsive: another workspace starts and finishes a command meanwhile.
    const other = await rt.createWorkspace({ label: 'calm' });
    const echo = await other.run({ exec: 'echo', argv: ['fine'] });
    assert.equal((await echo.exited).status, 0);
    const result = await ws.stop({ graceMs: 0 });
    assert.equal(result.reaped, 1);
  });

  test('a setsid double-forked daemon is killed by the stop, and the cgroup is removed', async () => {
    const rt = await startRuntime({ statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'daemons', cgroup: true });
    const launcher = await ws.run({
      exec: 'sh',
      argv: ['-c', "setsid sh -c 'sh -c \"echo daemon \\$\\$; exec sleep 1000\" &' ; sleep 0.2; exit 0"],
    });
    const out = await waitForOutput(ws, launcher.id, 'daemon');
    await launcher.exited;
    const daemon = Number(/daemon (\d+)/.exec(out)![1]);
    assert.ok(existsSync(`/proc/${daemon}`), 'the daemon outlived its launcher');
    await ws.stop({ graceMs: 100 });
    await waitGone(daemon);
    const memoryRoot = support.mounts.memory ?? support.mounts.unified!;
    const own = support.own.memory ?? support.own.unified ?? '';
    assert.equal(existsSync(`${memoryRoot}${own}/shuma-`), false);
  });

  test("'kill' on memory stops the workspace when its processes pass the limit", async () => {
    const rt = await startRuntime({ statsIntervalMs: 0 });
    // No cgroup here: the quota actor compares the summed RSS with the limit and applies the policy.
    // Each process stays under its RLIMIT_AS (256 MiB); together they pass the workspace's limit.
    const ws = await rt.createWorkspace({ label: 'memquota', limits: { memoryBytes: 256 * 1024 * 1024 }, quota: { memory: 'kill' } });
    for (let i = 0; i < 2; i++) {
      const holder = await ws.run({ exec: '/usr/bin/python3', argv: [fixture('alloc.py'), '150'] });
      await waitForOutput(ws, holder.id, 'ready');
    }
    const stopped = waitFor(ws.subscribe.bind(ws), (s) => stateOf(s) === 'stopped', 'the memory quota stop');
    await ws.stats();
    const final = await stopped;
    assert.equal(final.context.stopReason, 'quota');
    assert.match(String(final.context.quotaBreach), /^memory: \d+\.\d\d MiB > 256\.00 MiB limit$/);
  });

  test('without delegation (a cgroup that cannot be made) a warning says so and commands still run', async () => {
    const rt = await startRuntime({ statsIntervalMs: 0 });
    // A path under a file cannot be made, as one outside a delegated subtree cannot.
    const ws = await rt.createWorkspace({ label: 'undelegated', cgroup: 'cgroup.procs/inner', limits: { memoryBytes: 1 << 30 } });
    assert.equal(ws.warnings.length >= 1, true);
    assert.match(ws.warnings[0]!, /^cgroup was asked but .* could not be created \((EEXIST|ENOTDIR)\): the workspace runs without a cgroup/);
    const cmd = await ws.run({ exec: 'echo', argv: ['still works'] });
    await cmd.exited;
    assert.equal((await ws.logs(cmd.id)).toString(), 'still works\n');
    assert.equal((await ws.stats()).source, 'proc');
  });
});
