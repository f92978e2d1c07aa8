import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, constants, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { detectCgroups } from '../src/host/cgroup/cgroups.js';
import { createSpawner } from '../src/host/spawn/choose-spawner.js';
import { loadSpawnerAddon } from '../src/host/spawn/native-addon.js';
import { NativeSpawner } from '../src/host/spawn/native-spawner.js';
import type { SpawnedProcess, SpawnOrder } from '../src/host/spawn/spawner.js';
import { startRuntime } from './helpers.js';

function addonProblem(): string | false {
  try {
    loadSpawnerAddon();
    return false;
  } catch (error) {
    return `the native spawner does not load here: ${(error as Error).message}`;
  }
}

const skip = addonProblem();
const support = detectCgroups();
const noCgroups = process.getuid?.() !== 0 ? 'needs root to write cgroups' : support.version === null ? `no cgroups here: ${support.reason}` : false;

const ENV = { PATH: '/usr/bin:/bin' };
const tmp = mkdtempSync(path.join(tmpdir(), 'shuma-native-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function order(file: string, args: string[] = [], extra: Partial<SpawnOrder> = {}): SpawnOrder {
  return { file, argv0: path.basename(file), args, env: ENV, cwd: '/', ...extra };
}

function collect(stream: Readable | null): Promise<string> {
  if (!stream) return Promise.resolve('');
  const chunks: Buffer[] = [];
  // A chunk is a view of the spawner's reused read buffer: kept, it must be copied.
  stream.on('data', (chunk: Buffer) => chunks.push(Buffer.from(chunk)));
  return new Promise((resolve) => stream.once('close', () => resolve(Buffer.concat(chunks).toString())));
}

function exitOf(child: SpawnedProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.onExit((code, signal) => resolve({ code, signal })));
}

/** Runs a program to its end through the spawner: its exit and all it wrote. */
async function runToEnd(spawner: NativeSpawner, o: SpawnOrder) {
  const child = await spawner.spawn(o);
  const [exit, stdout, stderr] = await Promise.all([exitOf(child), collect(child.stdout), collect(child.stderr)]);
  return { ...exit, stdout, stderr };
}

/** Zombie children of this process: exited, never reaped. */
function zombieChildren(): number[] {
  const zombies: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let status: string;
    try {
      status = readFileSync(`/proc/${name}/status`, 'latin1');
    } catch {
      continue; // gone while we looked
    }
    const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]);
    if (ppid === process.pid && /^State:\s+Z/m.test(status)) zombies.push(Number(name));
  }
  return zombies;
}

describe('native spawner', { skip }, () => {
  const spawner = skip ? (null as unknown as NativeSpawner) : new NativeSpawner();

  test('only 0, 1 and 2 reach the program: no descriptor of the runtime leaks', async () => {
    const result = await runToEnd(spawner, order('/bin/ls', ['-l', '/proc/self/fd']));
    assert.equal(result.code, 0, result.stderr);
    const fds = result.stdout
      .split('\n')
      .filter((line) => line.includes('->'))
      .map((line) => ({ fd: Number(/ (\d+) -> /.exec(line)?.[1]), target: line.split(' -> ')[1]! }));
    // ls opens one descriptor of its own: the directory it lists.
    const others = fds.filter(({ fd, target }) => fd > 2 && !/^\/proc\/\d+\/fd$/.test(target));
    assert.deepEqual(others, [], result.stdout);
    assert.deepEqual(fds.filter(({ fd }) => fd <= 2).map(({ fd }) => fd), [0, 1, 2]);
    assert.equal(fds[0]!.target, '/dev/null');
  });

  test('the program starts with default signal dispositions and nothing blocked (Node ignores SIGPIPE)', async () => {
    const masks = await runToEnd(spawner, order('/bin/grep', ['-E', '^Sig(Ign|Blk)', '/proc/self/status']));
    assert.equal(masks.stdout, 'SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n');
    // A shell cannot reset a signal ignored at its start: with SIGPIPE inherited as ignored, it would live on.
    assert.deepEqual(await exitOf(await spawner.spawn(order('/bin/sh', ['-c', 'kill -PIPE $$; exit 9']))), { code: null, signal: 'SIGPIPE' });
    const pipe = await runToEnd(spawner, order('/bin/sh', ['-c', 'yes | head -1']));
    assert.deepEqual(pipe, { code: 0, signal: null, stdout: 'y\n', stderr: '' });
  });

  test("the program leads a process group of its own, in the runtime's session (no autogroup of its own)", async () => {
    const result = await runToEnd(spawner, order('/bin/sh', ['-c', 'cut -d" " -f5,6 /proc/$$/stat; echo $$']));
    const [ids, pid] = result.stdout.trim().split('\n');
    const session = readFileSync('/proc/self/stat', 'latin1').split(') ')[1]!.split(' ')[3];
    assert.equal(ids, `${pid} ${session}`);
  });

  test('asked for a session of its own (ownSession), the program leads one: setsid, a scheduling autogroup of its own', async () => {
    const result = await runToEnd(spawner, order('/bin/sh', ['-c', 'cut -d" " -f5,6 /proc/$$/stat; echo $$; cat /proc/$$/autogroup 2>/dev/null || echo none'], { ownSession: true }));
    const [ids, pid, autogroup] = result.stdout.trim().split('\n');
    assert.equal(ids, `${pid} ${pid}`);
    if (existsSync('/proc/self/autogroup')) assert.notEqual(autogroup!.split(' ')[0], readFileSync('/proc/self/autogroup', 'latin1').split(' ')[0]);
  });

  test('a child whose stdio handles were all closed at once still reports its exit', async () => {
    const child = await spawner.spawn(order('/bin/sh', ['-c', 'exit 3'], { stdio: { stdin: 'pipe' } }));
    const outputEnd = new Promise<void>((resolve) => child.onOutputEnd(resolve));
    child.stdin!.destroy();
    child.stdout!.destroy();
    child.stderr!.destroy();
    assert.deepEqual(await exitOf(child), { code: 3, signal: null });
    await outputEnd;
  });

  test('output written before anyone listens is kept until a listener comes (reads start on demand)', async () => {
    const child = await spawner.spawn(order('/bin/echo', ['early']));
    assert.deepEqual(await exitOf(child), { code: 0, signal: null });
    // The bytes sit in the pipe; a stream that read them with no listener would have lost them.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(await collect(child.stdout), 'early\n');
    child.stderr!.resume();
  });

  test('stdin as a pipe: what the runtime writes, the program reads', async () => {
    const child = await spawner.spawn(order('/bin/cat', [], { stdio: { stdin: 'pipe' } }));
    const out = collect(child.stdout);
    child.stdin!.end('through the pipe\n');
    assert.deepEqual(await exitOf(child), { code: 0, signal: null });
    assert.equal(await out, 'through the pipe\n');
  });

  test('10,000 spawns, 16 at a time, leave no zombie', async () => {
    let left = 10_000;
    const lane = async () => {
      while (left-- > 0) {
        const child = await spawner.spawn(order('/bin/true'));
        const done = new Promise<void>((resolve) => child.onOutputEnd(resolve));
        child.stdout!.resume();
        child.stderr!.resume();
        assert.deepEqual(await exitOf(child), { code: 0, signal: null });
        await done;
      }
    };
    await Promise.all(Array.from({ length: 16 }, lane));
    assert.deepEqual(zombieChildren(), []);
  });

  test("a child slow to reach its exec holds up no other spawn (the spawner thread does not wait for it)", async () => {
    // The child blocks before its exec: joining a "cgroup" that is a FIFO waits for a reader.
    const fifo = path.join(tmp, 'slow-start');
    execFileSync('mkfifo', [fifo]);
    let slowSettled = false;
    const slow = spawner.spawn(order('/bin/true', [], { cgroupProcsFiles: [fifo] })).finally(() => (slowSettled = true));
    let reader = -1;
    try {
      // With CLONE_VFORK the thread slept until that exec: this spawn waited for it. Without it,
      // this spawn's exec pipe is open before the slow child's clone, so the slow child starts
      // with its write end: were it to keep it while it blocks, this spawn's "exec'd" would wait.
      // (Moving launch-child.c's close_all_but after the cgroup step fails this test.)
      assert.deepEqual((await runToEnd(spawner, order('/bin/echo', ['meanwhile']))).stdout, 'meanwhile\n');
      assert.equal(slowSettled, false, 'the slow child cannot have exec\'d: nobody read its FIFO yet');
    } finally {
      reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK); // lets it go on (kept open: its write must not meet EPIPE)
    }
    const child = await slow.finally(() => closeSync(reader));
    child.stdout!.resume();
    child.stderr!.resume();
    assert.deepEqual(await exitOf(child), { code: 0, signal: null });
  });

  test('64 at once, failures among them: each spawn is told its own outcome, and no zombie is left', async () => {
    const missing = path.join(tmp, 'missing-among-many');
    const outcomes = await Promise.all(
      Array.from({ length: 64 }, async (_, i) => {
        if (i % 3 === 1) return spawner.spawn(order(missing)).then(() => 'started', (error: { osCode?: string }) => error.osCode);
        const result = await runToEnd(spawner, order('/bin/echo', [String(i)]));
        return result.stdout.trim();
      }),
    );
    assert.deepEqual(
      outcomes,
      Array.from({ length: 64 }, (_, i) => (i % 3 === 1 ? 'ENOENT' : String(i))),
    );
    assert.deepEqual(zombieChildren(), []);
  });

  describe('failures are SPAWN_FAILED with their cause, and leave no zombie', () => {
    const notExecutable = path.join(tmp, 'not-executable');
    writeFileSync(notExecutable, '#!/bin/sh\n');
    chmodSync(notExecutable, 0o644);
    const cases: Array<[string, SpawnOrder, string, RegExp]> = [
      ['a missing program', order(path.join(tmp, 'missing')), 'ENOENT', /not found/],
      ['a file that is not executable', order(notExecutable), 'EACCES', /permission denied/],
      ['a missing working directory', order('/bin/true', [], { cwd: path.join(tmp, 'gone') }), 'ENOENT', /working directory .*gone' does not exist/],
      ['arguments and environment beyond the kernel limit', order('/bin/true', [], { env: { BIG: 'x'.repeat(4 * 2 ** 20) } }), 'E2BIG', /too large/],
      ['a cgroup that cannot be joined', order('/bin/true', [], { cgroupProcsFiles: [path.join(tmp, 'no-cgroup', 'cgroup.procs')] }), 'ENOENT', /could not join cgroup/],
    ];
    for (const [what, o, cause, message] of cases) {
      test(what, async () => {
        await assert.rejects(spawner.spawn(o), (error: { code?: string; osCode?: string; message?: string }) => {
          assert.equal(error.code, 'SPAWN_FAILED');
          assert.equal(error.osCode, cause);
          assert.match(error.message!, message);
          return true;
        });
        assert.deepEqual(zombieChildren(), []);
      });
    }
  });

  describe('choice of spawner', () => {
    test('native by default, child_process when SHUMA_SPAWNER=node, refused when unknown', () => {
      assert.equal(createSpawner(undefined).spawner.name, 'native');
      assert.deepEqual(createSpawner(undefined).warning, null);
      assert.equal(createSpawner('node').spawner.name, 'node');
      assert.throws(() => createSpawner('fork'), { code: 'INVALID_ARGUMENT' });
    });
  });
});

describe('limits and cgroup through the runtime, with the spawner it chose', () => {
  test('rlimits are in force when the program starts', async () => {
    const rt = await startRuntime({ statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'limited', limits: { nofile: 100, cpuSeconds: 7, memoryBytes: 2 ** 30 } });
    assert.deepEqual(ws.warnings, []);
    const cmd = await ws.run({ exec: '/bin/sh', argv: ['-c', 'cat /proc/self/limits; cat /proc/self/cgroup'] });
    assert.equal((await cmd.exited).status, 0);
    const out = (await ws.logs(cmd.id)).toString();
    assert.match(out, /Max open files\s+100\s+100/);
    assert.match(out, /Max cpu time\s+7\s+7/);
    assert.match(out, new RegExp(`Max address space\\s+${2 ** 30}\\s+${2 ** 30}`));
  });

  test('cgroup membership and rlimits are in force when the program starts', { skip: noCgroups }, async () => {
    const rt = await startRuntime({ statsIntervalMs: 0 });
    const ws = await rt.createWorkspace({ label: 'placed', cgroup: true, limits: { nofile: 100, cpuSeconds: 7 } });
    const cmd = await ws.run({ exec: '/bin/sh', argv: ['-c', 'cat /proc/self/limits; cat /proc/self/cgroup'] });
    assert.equal((await cmd.exited).status, 0);
    const out = (await ws.logs(cmd.id)).toString();
    assert.match(out, /Max open files\s+100\s+100/);
    assert.match(out, /Max cpu time\s+7\s+7/);
    const cgroupLines = out.split('\n').filter((l) => /:(memory|pids):|^0::/.test(l));
    assert.ok(cgroupLines.length > 0 && cgroupLines.every((l) => l.endsWith(`/${ws.id}`) || l.startsWith('0::')), out);
    assert.ok(cgroupLines.some((l) => l.endsWith(`/${ws.id}`)), out);
  });

  test('health() says which spawner starts the processes', async () => {
    const rt = await startRuntime();
    assert.equal((await rt.health()).spawner, process.env.SHUMA_SPAWNER === 'node' || skip ? 'node' : 'native');
  });
});
