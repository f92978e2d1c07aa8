import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { isShumaError } from '../src/protocol/errors.js';
import {
  createWorkspaceCgroup,
  detectCgroups,
  removeCgroupParent,
  type CgroupSupport,
  type WorkspaceCgroup,
} from '../src/host/cgroup/cgroups.js';
import { isAlive } from './helpers.js';

// cgroups: v1 for real on this machine (root, memory and pids writable), v2 against a fixture
// tree of plain files (the kernel's files are made by the test: mkdir in a plain directory does
// not make them, and createWorkspaceCgroup reuses a directory that already exists).

const MiB = 1024 * 1024;
const PARENT = `shuma-test-${process.pid}`;

// ── cleanup: every process and cgroup a test makes is gone when the file ends ──────────────────

const children = new Set<ChildProcess>();
const strayPids = new Set<number>();
const cgroups = new Set<WorkspaceCgroup>();
const tempDirs = new Set<string>();

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  for (const pid of strayPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // ESRCH: already gone, which is the normal case when the test passed
    }
  }
  for (const cgroup of cgroups) {
    await cgroup.killAll();
    await cgroup.remove();
  }
  if (real.version === 1) await removeCgroupParent(real, PARENT);
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

function track(cgroup: WorkspaceCgroup | null): WorkspaceCgroup {
  assert.ok(cgroup, 'no cgroup was made');
  cgroups.add(cgroup);
  return cgroup;
}

function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/** Polls `predicate` until it holds; fails with `what` after `timeoutMs`. */
async function until(predicate: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await delay(10);
  }
}

interface Started {
  child: ChildProcess;
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A shell that joins every hierarchy of `cgroup` before it runs `then` (as a command of the runtime will). */
function startIn(cgroup: WorkspaceCgroup, then: string): Started {
  const join = cgroup.procsFiles.map((file) => `echo $$ > '${file}'`).join('; ');
  const child = spawn('sh', ['-c', `${join}; ${then}`], { stdio: 'ignore' });
  children.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  assert.ok(child.pid, 'spawn gave no pid');
  return { child, pid: child.pid, exited };
}

function read(file: string): string {
  return readFileSync(file, 'latin1');
}

/** Writes fixture files into `dir` (made if missing): what the kernel would show there. */
function files(dir: string, contents: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(contents)) writeFileSync(path.join(dir, name), text);
}

/** What the kernel does on rmdir of a cgroup: its control files go with it. */
function dropFiles(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isFile()) rmSync(path.join(dir, entry.name));
}

async function rejectsInvalid(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isShumaError(error), `not a ShumaError: ${String(error)}`);
    assert.equal(error.code, 'INVALID_SPEC');
    assert.match(error.message, message);
    return true;
  });
}

// ── detection ───────────────────────────────────────────────────────────────────────────────

const real = detectCgroups();

/** This machine's memory cgroup, straight from /proc/self/cgroup (`4:memory:/a/b`). */
function ownMemoryCgroup(): string | undefined {
  const line = read('/proc/self/cgroup')
    .split('\n')
    .find((l) => l.split(':')[1]?.split(',').includes('memory'));
  return line?.split(':')[2];
}

function mountinfoLine(mountPoint: string, fsType: string, superOptions: string, root = '/'): string {
  const escaped = mountPoint.replace(/ /g, '\\040');
  return `41 31 0:38 ${root} ${escaped} rw,nosuid,nodev,noexec,relatime shared:9 - ${fsType} ${fsType} ${superOptions}`;
}

const OTHER_MOUNTS = [
  '22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/vda rw',
  '23 22 0:5 / /proc rw,nosuid,nodev,noexec,relatime shared:2 - proc proc rw',
];

/** A fake /proc/self/mountinfo and /proc/self/cgroup, written in `dir`. */
function procFiles(dir: string, mounts: string[], selfCgroup: string): { mountinfo: string; selfCgroup: string } {
  const mountinfo = path.join(dir, 'mountinfo');
  const self = path.join(dir, 'self-cgroup');
  writeFileSync(mountinfo, [...OTHER_MOUNTS, ...mounts].join('\n') + '\n');
  writeFileSync(self, selfCgroup);
  return { mountinfo, selfCgroup: self };
}

describe('cgroup detection', () => {
  test("this machine: v1 (hybrid), memory and pids writable, own cgroup from /proc/self/cgroup", { skip: process.getuid?.() !== 0 && 'needs root' }, () => {
    assert.equal(real.version, 1, `detected ${JSON.stringify(real)}`);
    assert.equal(real.reason, null);
    assert.equal(real.mounts.memory, '/sys/fs/cgroup/memory');
    assert.equal(real.mounts.pids, '/sys/fs/cgroup/pids');
    assert.equal(real.own.memory, ownMemoryCgroup());
    assert.equal(real.mounts.unified, undefined, 'the controller-less v2 mount is not used on a hybrid system');
  });

  test('pure v2 fixture: the unified mount and the own cgroup (mount path with a space, subtree mount root)', () => {
    const dir = tempDir('shuma-detect-');
    const root = path.join(dir, 'cgroup root');
    files(path.join(root, 'runtime.scope'), { 'cgroup.controllers': 'cpu io memory pids\n' });
    const proc = procFiles(dir, [mountinfoLine(root, 'cgroup2', 'rw,nsdelegate', '/system.slice')], '0::/system.slice/runtime.scope\n');
    assert.deepEqual(detectCgroups(proc), { version: 2, reason: null, mounts: { unified: root }, own: { unified: '/runtime.scope' } });
  });

  test('no cgroup fixture: version null and the reason says why', () => {
    const dir = tempDir('shuma-detect-');
    const proc = procFiles(dir, [], '');
    const support = detectCgroups(proc);
    assert.equal(support.version, null);
    assert.equal(support.reason, `no cgroup hierarchy is mounted (${proc.mountinfo} lists neither cgroup2 nor a v1 memory or pids controller)`);
  });

  test('v1 fixture: cpuacct co-mounted with cpu, a subtree mount root, own cgroups per controller', () => {
    const dir = tempDir('shuma-detect-');
    for (const sub of ['memory/box', 'pids/box/inner', 'cpu,cpuacct']) mkdirSync(path.join(dir, sub), { recursive: true });
    const proc = procFiles(
      dir,
      [
        mountinfoLine(path.join(dir, 'memory'), 'cgroup', 'rw,memory'),
        mountinfoLine(path.join(dir, 'pids'), 'cgroup', 'rw,pids', '/outer'),
        mountinfoLine(path.join(dir, 'cpu,cpuacct'), 'cgroup', 'rw,cpu,cpuacct'),
        mountinfoLine(path.join(dir, 'unified'), 'cgroup2', 'rw'),
      ],
      '5:memory:/box\n4:pids:/outer/box/inner\n2:cpu,cpuacct:/\n1:name=systemd:/\n0::/\n',
    );
    assert.deepEqual(detectCgroups(proc), {
      version: 1,
      reason: null,
      mounts: { memory: path.join(dir, 'memory'), pids: path.join(dir, 'pids'), cpuacct: path.join(dir, 'cpu,cpuacct') },
      own: { memory: '/box', pids: '/box/inner', cpuacct: '/' },
    });
  });

  test('v1 fixture whose memory hierarchy is missing: version null, the reason names it', () => {
    const dir = tempDir('shuma-detect-');
    const memory = path.join(dir, 'memory');
    const proc = procFiles(dir, [mountinfoLine(memory, 'cgroup', 'rw,memory'), mountinfoLine(path.join(dir, 'pids'), 'cgroup', 'rw,pids')], '4:memory:/\n3:pids:/\n0::/\n');
    const support = detectCgroups(proc);
    assert.equal(support.version, null);
    assert.equal(support.reason, `${memory} does not exist (ENOENT): cgroups need root, or a cgroup subtree delegated to this user (e.g. systemd Delegate=yes)`);
  });

  test('unreadable /proc files: version null, the reason names them', () => {
    const support = detectCgroups({ mountinfo: '/nonexistent/mountinfo', selfCgroup: '/nonexistent/cgroup' });
    assert.equal(support.version, null);
    assert.equal(support.reason, '/nonexistent/mountinfo or /nonexistent/cgroup could not be read (ENOENT)');
  });
});

// ── without delegation: a warning, never an exception ─────────────────────────────────────────

describe('cgroup without delegation', () => {
  test('no usable hierarchy: cgroup null and a warning saying what was asked and why', async () => {
    const support: CgroupSupport = { version: null, reason: '/sys/fs/cgroup/memory/x is not writable (EROFS): cgroups need root', mounts: {}, own: {} };
    const { cgroup, warnings } = await createWorkspaceCgroup(support, { parent: PARENT, name: 'ws', memoryBytes: 20 * MiB, nproc: 8 });
    assert.equal(cgroup, null);
    assert.deepEqual(warnings, [
      'cgroup was asked but /sys/fs/cgroup/memory/x is not writable (EROFS): cgroups need root: the workspace runs without a cgroup; limits.memoryBytes (20.00 MiB) and limits.nproc (8) not enforced by the kernel',
    ]);
  });

  test('v1: a hierarchy that cannot take the cgroup leaves nothing half-made in the others', async () => {
    const dir = tempDir('shuma-v1-');
    mkdirSync(path.join(dir, 'memory'));
    writeFileSync(path.join(dir, 'pids'), 'not a directory');
    const support: CgroupSupport = { version: 1, reason: null, mounts: { memory: path.join(dir, 'memory'), pids: path.join(dir, 'pids') }, own: { memory: '/', pids: '/' } };
    const { cgroup, warnings } = await createWorkspaceCgroup(support, { parent: 'rt', name: 'ws', memoryBytes: 20 * MiB });
    assert.equal(cgroup, null);
    assert.deepEqual(warnings, [`cgroup was asked but ${dir}/pids/rt could not be created (ENOTDIR): the workspace runs without a cgroup`]);
    assert.equal(existsSync(path.join(dir, 'memory/rt/ws')), false, 'the memory cgroup made before the failure was removed');
  });

  test('v1 kernel without oom_kill in memory.oom_control: said, not silently counted as 0', async () => {
    const dir = tempDir('shuma-v1-');
    const leaf = path.join(dir, 'memory/rt/ws');
    files(leaf, { 'memory.limit_in_bytes': '', 'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\n', 'cgroup.procs': '' });
    const support: CgroupSupport = { version: 1, reason: null, mounts: { memory: path.join(dir, 'memory') }, own: { memory: '/' } };
    const { cgroup, warnings } = await createWorkspaceCgroup(support, { parent: 'rt', name: 'ws', memoryBytes: 20 * MiB, nproc: 4 });
    track(cgroup);
    assert.deepEqual(warnings, [
      'limits.nproc (4) was not applied as a cgroup limit: no v1 pids controller is mounted',
      `cgroup: ${leaf}/memory.oom_control has no oom_kill field (Linux < 4.13): kernel OOM kills in this workspace cannot be counted (memory.failcnt counts hits of the limit, not kills)`,
    ]);
    assert.equal(read(path.join(leaf, 'memory.limit_in_bytes')), String(20 * MiB));
    dropFiles(leaf);
  });

  test('a cgroup path that is absolute, has .. or is empty is refused (a spec error)', async () => {
    const support: CgroupSupport = { version: 2, reason: null, mounts: { unified: '/nonexistent' }, own: { unified: '/' } };
    await rejectsInvalid(createWorkspaceCgroup(support, { parent: '', name: '/sys/fs/cgroup/x' }), /must be relative/);
    await rejectsInvalid(createWorkspaceCgroup(support, { parent: '', name: 'a/../../b' }), /must not contain '\.\.'/);
    await rejectsInvalid(createWorkspaceCgroup(support, { parent: '', name: 'a//b' }), /empty or '\.' segments/);
    await rejectsInvalid(createWorkspaceCgroup(support, { parent: PARENT, name: '' }), /must not be empty/);
    await rejectsInvalid(createWorkspaceCgroup(support, { parent: PARENT, name: 'ws', nproc: 0 }), /limits\.nproc must be a positive integer/);
  });
});

// ── v2 against a fixture tree ────────────────────────────────────────────────────────────────

/** A cgroup2 tree: root (enables memory only) → user.slice (memory) → runtime.scope (own, nothing enabled). */
function v2Fixture(): { root: string; own: string; support: CgroupSupport } {
  const root = path.join(tempDir('shuma-v2-'), 'cgroup');
  const own = path.join(root, 'user.slice/runtime.scope');
  files(root, { 'cgroup.controllers': 'cpu io memory pids\n', 'cgroup.subtree_control': 'memory\n' });
  files(path.join(root, 'user.slice'), { 'cgroup.controllers': 'memory\n', 'cgroup.subtree_control': 'memory\n' });
  files(own, { 'cgroup.controllers': 'memory\n', 'cgroup.subtree_control': '', 'cgroup.procs': `${process.pid}\n` });
  const proc = procFiles(path.dirname(root), [mountinfoLine(root, 'cgroup2', 'rw,nsdelegate')], '0::/user.slice/runtime.scope\n');
  const support = detectCgroups(proc);
  assert.deepEqual(support, { version: 2, reason: null, mounts: { unified: root }, own: { unified: '/user.slice/runtime.scope' } });
  return { root, own, support };
}

/** The files the kernel shows in a fresh v2 cgroup with memory and pids enabled. */
function v2KernelFiles(dir: string, extra: Record<string, string> = {}): void {
  files(dir, {
    'cgroup.controllers': 'memory pids\n',
    'cgroup.subtree_control': '',
    'cgroup.procs': '',
    'cgroup.kill': '',
    'memory.max': 'max\n',
    'memory.swap.max': 'max\n',
    'memory.current': '4096\n',
    'memory.events': 'low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n',
    'pids.max': 'max\n',
    'pids.current': '2\n',
    'pids.events': 'max 5\n',
    'cpu.stat': 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n',
    ...extra,
  });
}

describe('cgroup v2 (fixture tree)', () => {
  test('enables +memory +pids down the ancestors, writes the limits, parses samples and OOM kills, kills with cgroup.kill', async () => {
    const { root, own, support } = v2Fixture();
    const parent = path.join(own, 'shuma-rt');
    const leaf = path.join(parent, 'ws1');
    v2KernelFiles(parent);
    v2KernelFiles(leaf);
    const { cgroup, warnings } = await createWorkspaceCgroup(support, { parent: 'shuma-rt', name: 'ws1', memoryBytes: 20 * MiB, nproc: 8 });
    const cg = track(cgroup);
    assert.deepEqual(warnings, []);
    assert.equal(cg.version, 2);
    assert.deepEqual(cg.dirs, [leaf]);
    assert.deepEqual(cg.procsFiles, [path.join(leaf, 'cgroup.procs')]);
    // pids was enabled nowhere: from the root down; memory from below user.slice, which has it.
    assert.equal(read(path.join(root, 'cgroup.subtree_control')), '+pids');
    assert.equal(read(path.join(root, 'user.slice/cgroup.subtree_control')), '+pids');
    assert.equal(read(path.join(own, 'cgroup.subtree_control')), '+memory +pids');
    assert.equal(read(path.join(parent, 'cgroup.subtree_control')), '+memory +pids');
    assert.equal(read(path.join(leaf, 'memory.max')), String(20 * MiB));
    assert.equal(read(path.join(leaf, 'memory.swap.max')), '0');
    assert.equal(read(path.join(leaf, 'pids.max')), '8');

    assert.deepEqual(cg.sample(), { memoryBytes: 4096, cpuUsec: 1500, pids: 2, forksRefused: 5 });
    writeFileSync(path.join(leaf, 'memory.current'), '8192\n'); // the open file is re-read, not cached
    writeFileSync(path.join(leaf, 'cpu.stat'), 'usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n');
    assert.deepEqual(cg.sample(), { memoryBytes: 8192, cpuUsec: 2500, pids: 2, forksRefused: 5 });
    assert.equal(cg.oomKills(), 2);

    writeFileSync(path.join(leaf, 'cgroup.procs'), '101\n102\n');
    assert.deepEqual(cg.pids(), [101, 102]);
    writeFileSync(path.join(leaf, 'cgroup.procs'), ''); // what the kernel shows once cgroup.kill has done its work
    await cg.killAll();
    assert.equal(read(path.join(leaf, 'cgroup.kill')), '1');

    dropFiles(leaf);
    await cg.remove();
    await cg.remove(); // idempotent
    assert.equal(existsSync(leaf), false);
    dropFiles(parent);
    await removeCgroupParent(support, 'shuma-rt');
    assert.equal(existsSync(parent), false);
  });

  test('without cgroup.kill (Linux < 5.14) killAll SIGKILLs every pid in cgroup.procs', async () => {
    const { own, support } = v2Fixture();
    const leaf = path.join(own, 'shuma-rt/ws2');
    v2KernelFiles(path.join(own, 'shuma-rt'));
    v2KernelFiles(leaf);
    rmSync(path.join(leaf, 'cgroup.kill'));
    const cg = track((await createWorkspaceCgroup(support, { parent: 'shuma-rt', name: 'ws2' })).cgroup);
    const sleeper = spawn('sleep', ['100'], { stdio: 'ignore' });
    children.add(sleeper);
    assert.ok(sleeper.pid);
    const exited = new Promise<NodeJS.Signals | null>((resolve) => sleeper.once('exit', (_code, signal) => resolve(signal)));
    writeFileSync(path.join(leaf, 'cgroup.procs'), `${sleeper.pid}\n`);
    sleeper.once('exit', () => writeFileSync(path.join(leaf, 'cgroup.procs'), '')); // the kernel's part
    await cg.killAll();
    assert.equal(await exited, 'SIGKILL');
    assert.equal(existsSync(path.join(leaf, 'cgroup.kill')), false, 'no cgroup.kill was made');
    dropFiles(leaf);
    await cg.remove();
  });

  test('controllers not delegated: the cgroup is still made (grouping, kill) and the limits are warned about', async () => {
    const { own, support } = v2Fixture();
    // The parent is a plain directory here: no cgroup.subtree_control, as when the kernel refuses it.
    const { cgroup, warnings } = await createWorkspaceCgroup(support, { parent: 'shuma-rt', name: 'ws3', memoryBytes: 20 * MiB, nproc: 8 });
    const cg = track(cgroup);
    const parent = path.join(own, 'shuma-rt');
    assert.deepEqual(warnings, [
      `limits.memoryBytes (20.00 MiB) was not applied as a cgroup limit: the memory controller could not be enabled for ${parent}/ws3: writing +memory to ${parent}/cgroup.subtree_control failed (ENOENT): memory is not in ${parent}/cgroup.controllers, its parent does not delegate it`,
      `limits.nproc (8) was not applied as a cgroup limit: the pids controller could not be enabled for ${parent}/ws3: writing +pids to ${parent}/cgroup.subtree_control failed (ENOENT): pids is not in ${parent}/cgroup.controllers, its parent does not delegate it`,
    ]);
    assert.deepEqual(cg.sample(), { memoryBytes: null, cpuUsec: null, pids: null, forksRefused: null });
    await cg.remove();
    await removeCgroupParent(support, 'shuma-rt');
    assert.equal(existsSync(parent), false);
  });

  test("a user's path (parent '') goes below the hierarchy's root; remove() takes the directories it made", async () => {
    const { root, support } = v2Fixture();
    const { cgroup } = await createWorkspaceCgroup(support, { parent: '', name: 'custom/build' });
    const cg = track(cgroup);
    assert.deepEqual(cg.dirs, [path.join(root, 'custom/build')]);
    await cg.remove();
    assert.equal(existsSync(path.join(root, 'custom')), false);
  });
});

// ── v1 for real ──────────────────────────────────────────────────────────────────────────────

const v1Skip =
  process.getuid?.() !== 0
    ? 'needs root: the v1 hierarchies here are writable by root only'
    : real.version !== 1 || real.mounts.memory === undefined || real.mounts.pids === undefined
      ? `needs cgroup v1 with memory and pids controllers (detected ${JSON.stringify(real)})`
      : false;

describe('cgroup v1 (this machine, for real)', { skip: v1Skip }, () => {
  test('limits are written; a child joins; sample() sees it; killAll() empties the cgroup; remove() removes it', async () => {
    const { cgroup, warnings } = await createWorkspaceCgroup(real, { parent: PARENT, name: 'limits', memoryBytes: 20 * MiB, nproc: 8 });
    const cg = track(cgroup);
    assert.deepEqual(warnings, []);
    const memoryDir = path.join(real.mounts.memory ?? '', real.own.memory ?? '', PARENT, 'limits');
    const pidsDir = path.join(real.mounts.pids ?? '', real.own.pids ?? '', PARENT, 'limits');
    assert.ok(cg.dirs.includes(memoryDir) && cg.dirs.includes(pidsDir), `dirs: ${cg.dirs.join(', ')}`);
    assert.equal(read(path.join(memoryDir, 'memory.limit_in_bytes')).trim(), String(20 * MiB));
    assert.equal(read(path.join(pidsDir, 'pids.max')).trim(), '8');

    const { pid, exited } = startIn(cg, 'exec sleep 100');
    await until(() => cg.pids().includes(pid), 'the child in cgroup.procs');
    // v1 charges only what is allocated after joining: the pid is listed before its exec's pages are.
    await until(() => (cg.sample().memoryBytes ?? 0) > 0, 'memory of the child charged to the cgroup');
    const sample = cg.sample();
    assert.ok(sample.memoryBytes !== null && sample.memoryBytes > 0, `memoryBytes ${sample.memoryBytes}`);
    assert.ok(sample.pids !== null && sample.pids >= 1, `pids ${sample.pids}`);
    assert.ok(sample.cpuUsec === null || sample.cpuUsec >= 0, `cpuUsec ${sample.cpuUsec}`);
    assert.equal(cg.oomKills(), 0);

    await cg.killAll();
    assert.deepEqual(cg.pids(), []);
    assert.equal((await exited).signal, 'SIGKILL');
    assert.equal(isAlive(pid), false);
    await cg.remove();
    for (const dir of cg.dirs) assert.equal(existsSync(dir), false, `${dir} removed`);
    await cg.remove(); // idempotent
  });

  test('a memory hog under a 20 MiB limit is OOM-killed (SIGKILL) and oomKills() counts it', async () => {
    const { cgroup, warnings } = await createWorkspaceCgroup(real, { parent: PARENT, name: 'hog', memoryBytes: 20 * MiB });
    const cg = track(cgroup);
    assert.deepEqual(warnings, [], 'this kernel has oom_kill in memory.oom_control');
    // dd fills a 200 MiB buffer from /dev/zero: every page is touched, so it is really charged.
    const { exited } = startIn(cg, 'exec dd if=/dev/zero of=/dev/null bs=200M count=1');
    assert.deepEqual(await exited, { code: null, signal: 'SIGKILL' });
    assert.equal(cg.oomKills(), 1);
    await cg.killAll();
    await cg.remove();
  });

  test('a setsid double-forked daemon escapes its process group but not the cgroup: killAll() kills it', async () => {
    const cg = track((await createWorkspaceCgroup(real, { parent: PARENT, name: 'daemon' })).cgroup);
    const pidFile = path.join(tempDir('shuma-daemon-'), 'pid');
    const { pid, exited } = startIn(cg, `setsid sh -c 'sleep 300 & echo $! > ${pidFile}'; exit 0`);
    assert.deepEqual(await exited, { code: 0, signal: null });
    await until(() => existsSync(pidFile) && read(pidFile).trim() !== '', 'the daemon pid');
    const daemon = Number(read(pidFile).trim());
    strayPids.add(daemon);
    const stat = read(`/proc/${daemon}/stat`);
    const [, , , session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    assert.notEqual(Number(session), pid, 'sanity: the daemon runs in a session of its own');
    assert.deepEqual(cg.pids(), [daemon]);

    await cg.killAll();
    assert.deepEqual(cg.pids(), []);
    await until(() => !isAlive(daemon), 'the daemon to die');
    strayPids.delete(daemon);
    await cg.remove();
  });

  test('killAll() empties a cgroup whose processes keep forking; pids.max (8) holds them', async () => {
    const cg = track((await createWorkspaceCgroup(real, { parent: PARENT, name: 'forker', nproc: 8 })).cgroup);
    // perl, not sh: dash exits when a fork fails, this loop keeps trying once pids.max is reached.
    startIn(cg, `exec perl -e 'while (1) { my $p = fork(); if (defined $p && $p == 0) { sleep 100; exit 0 } }'`);
    await until(() => cg.pids().length >= 8, 'the cgroup to fill up to pids.max');
    assert.ok((cg.sample().pids ?? 0) <= 8, `pids.current ${cg.sample().pids} ≤ pids.max 8`);
    // The forks past the limit are counted by the kernel (pids.events `max`).
    await until(() => (cg.sample().forksRefused ?? 0) > 0, 'a refused fork to be counted');
    await cg.killAll();
    assert.deepEqual(cg.pids(), []);
    await cg.remove();
  });

  test('removeCgroupParent() removes the runtime-owned parent once its workspaces are gone', async () => {
    const cg = track((await createWorkspaceCgroup(real, { parent: PARENT, name: 'last' })).cgroup);
    await assert.rejects(removeCgroupParent(real, PARENT), /workspace cgroups are still in it \(last\)/, 'not while a workspace cgroup is in it');
    await cg.remove();
    for (const cgroup of cgroups) await cgroup.remove(); // the earlier tests' (already removed: idempotent)
    await removeCgroupParent(real, PARENT);
    for (const hierarchy of Object.keys(real.mounts)) {
      const dir = path.join(real.mounts[hierarchy] ?? '', real.own[hierarchy] ?? '', PARENT);
      assert.equal(existsSync(dir), false, `${dir} removed`);
    }
  });
});
