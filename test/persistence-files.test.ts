// The persistence file layer on its own: the state directory's lock and the snapshot file.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, mock, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createInterface } from 'node:readline';
import { Packr, Unpackr } from 'msgpackr';
import { readProcStat } from '../src/host/processes/proc.js';
import { LOCK_FILE, acquireStateLock } from '../src/host/persistence/state-lock.js';
import {
  SNAPSHOT_FILE,
  SNAPSHOT_MAX_DEPTH,
  keepSnapshotAside,
  readSnapshotFile,
  writeSnapshotFile,
  type SnapshotRead,
} from '../src/host/persistence/snapshot-file.js';
import { isShumaError, type ErrorCode } from '../src/protocol/errors.js';

const LOCK_MODULE = new URL('../src/host/persistence/state-lock.js', import.meta.url).href;
const SNAPSHOT_MODULE = new URL('../src/host/persistence/snapshot-file.js', import.meta.url).href;

// ── temp directories and child processes, all gone at the end ─────────────────────────

const roots: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'shuma-persist-')); // mode 0700
  roots.push(dir);
  return dir;
}

const children = new Set<Child>();

/** A node process running `script` (an ES module), read line by line. */
class Child {
  readonly process: ChildProcess;
  readonly exited: Promise<void>;
  private readonly lines: string[] = [];
  private readonly waiters: Array<(line: string) => void> = [];

  constructor(script: string, args: string[]) {
    this.process = spawn(process.execPath, ['--input-type=module', '-e', script, ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.add(this);
    this.exited = once(this.process, 'exit').then(() => {
      children.delete(this);
    });
    createInterface({ input: this.process.stdout! }).on('line', (line) => {
      const waiter = this.waiters.shift();
      if (waiter) waiter(line);
      else this.lines.push(line);
    });
  }

  nextLine(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return Promise.race([
      new Promise<string>((resolve) => this.waiters.push(resolve)),
      this.exited.then(() => Promise.reject(new Error('the child exited before writing the line awaited'))),
    ]);
  }

  async kill(): Promise<void> {
    this.process.kill('SIGKILL');
    await this.exited;
  }
}

after(async () => {
  await Promise.all([...children].map((child) => child.kill()));
  for (const dir of roots) rmSync(dir, { recursive: true, force: true });
});

// ── the lock ─────────────────────────────────────────────────────────────────────────

/** Says `ready`, waits for a line on stdin, acquires, says `won` or the error code, holds until stdin ends. */
const LOCK_CHILD = `
const { acquireStateLock } = await import(process.argv[1]);
process.stdout.write('ready\\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
let lock;
try {
  lock = await acquireStateLock(process.argv[2]);
} catch (error) {
  process.stdout.write(String(error.code ?? error) + '\\n');
  process.exit(0);
}
process.stdout.write('won\\n');
process.stdin.on('end', () => lock.release().then(() => process.exit(0)));
`;

async function lockChild(stateDir: string): Promise<Child> {
  const child = new Child(LOCK_CHILD, [LOCK_MODULE, stateDir]);
  assert.equal(await child.nextLine(), 'ready');
  return child;
}

/** A child that holds the lock on `stateDir`. */
async function holdingChild(stateDir: string): Promise<Child> {
  const child = await lockChild(stateDir);
  child.process.stdin!.write('go\n');
  assert.equal(await child.nextLine(), 'won');
  return child;
}

interface LockRecordOnDisk {
  pid: number;
  startTime: number;
  bootId: string;
  token: string;
  acquiredAt: number;
}

function readLockRecord(stateDir: string): LockRecordOnDisk {
  return JSON.parse(readFileSync(path.join(stateDir, LOCK_FILE), 'utf8')) as LockRecordOnDisk;
}

const BOOT_ID = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

function ownStartTime(): number {
  return readProcStat(process.pid)!.startTime;
}

/** A pid that no process has now: one that has just exited (pids are not reused at once). */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await once(child, 'exit');
  assert.equal(readProcStat(child.pid!), null);
  return child.pid!;
}

function writeLockRecord(stateDir: string, fields: Partial<LockRecordOnDisk>): void {
  const record = { pid: process.pid, startTime: ownStartTime(), bootId: BOOT_ID, token: randomUUID(), acquiredAt: 0, ...fields };
  writeFileSync(path.join(stateDir, LOCK_FILE), JSON.stringify(record), { mode: 0o600 });
}

function isError(code: ErrorCode, ...patterns: RegExp[]): (error: unknown) => boolean {
  return (error) => {
    assert.ok(isShumaError(error), `not a ShumaError: ${String(error)}`);
    assert.equal(error.code, code, error.message);
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  };
}

function escape(text: string): RegExp {
  return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
}

describe('state lock', () => {
  test('creates a missing stateDir (0700) and a lock file (0600) naming this process', async () => {
    const stateDir = path.join(tempDir(), 'nested', 'state');
    const lock = await acquireStateLock(stateDir);
    assert.equal(lock.stateDir, stateDir);
    assert.equal(statSync(stateDir).mode & 0o777, 0o700);
    assert.equal(lstatSync(lock.path).mode & 0o777, 0o600);
    const record = readLockRecord(stateDir);
    assert.equal(record.pid, process.pid);
    assert.equal(record.startTime, ownStartTime());
    assert.deepEqual(readdirSync(stateDir), [LOCK_FILE]);
    await lock.release();
    assert.deepEqual(readdirSync(stateDir), []);
  });

  test('a second acquire fails with a clear error; release then acquire works', async () => {
    const stateDir = tempDir();
    const lock = await acquireStateLock(stateDir);
    await assert.rejects(
      acquireStateLock(stateDir),
      isError('STATE_DIR_LOCKED', escape(stateDir), new RegExp(`pid ${process.pid}\\b`), /shut that runtime down first/),
    );
    await lock.release();
    await lock.release(); // a second release does nothing
    const again = await acquireStateLock(stateDir);
    await again.release();
  });

  test('a lock held by another live process is refused, naming that process', async () => {
    const stateDir = tempDir();
    const holder = await holdingChild(stateDir);
    await assert.rejects(acquireStateLock(stateDir), isError('STATE_DIR_LOCKED', new RegExp(`pid ${holder.process.pid}\\b`)));
    holder.process.stdin!.end(); // the holder releases and exits
    await holder.exited;
    const lock = await acquireStateLock(stateDir);
    await lock.release();
  });

  test('the lock of a runtime killed with SIGKILL is taken over', async () => {
    const stateDir = tempDir();
    const holder = await holdingChild(stateDir);
    await holder.kill();
    assert.equal(readLockRecord(stateDir).pid, holder.process.pid, 'the crashed runtime left its lock');
    const lock = await acquireStateLock(stateDir);
    assert.equal(readLockRecord(stateDir).pid, process.pid);
    await lock.release();
  });

  test('stale locks are taken over: a dead pid, a live pid with another start time, another boot', async () => {
    const stale: Array<[string, Partial<LockRecordOnDisk>]> = [
      ['dead pid', { pid: await deadPid() }],
      ['live pid, other start time', { startTime: ownStartTime() + 1 }],
      ['written before a reboot', { bootId: randomUUID() }],
    ];
    for (const [what, fields] of stale) {
      const stateDir = tempDir();
      writeLockRecord(stateDir, fields);
      const lock = await acquireStateLock(stateDir);
      const record = readLockRecord(stateDir);
      assert.equal(record.startTime, ownStartTime(), what);
      assert.equal(record.bootId, BOOT_ID, what);
      await lock.release();
      assert.deepEqual(readdirSync(stateDir), [], what);
    }
  });

  test('starters racing over a stale lock in one process: exactly one wins', async () => {
    const pid = await deadPid();
    for (let round = 0; round < 20; round++) {
      const stateDir = tempDir();
      writeLockRecord(stateDir, { pid });
      const results = await Promise.allSettled(Array.from({ length: 4 }, () => acquireStateLock(stateDir)));
      const won = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
      assert.equal(won.length, 1, `round ${round}`);
      for (const result of results) {
        if (result.status === 'rejected') isError('STATE_DIR_LOCKED')(result.reason);
      }
      await won[0]!.release();
      assert.deepEqual(readdirSync(stateDir), [], 'no claim or draft left behind');
    }
  });

  test('processes racing over a stale lock: exactly one wins, every round', { timeout: 60_000 }, async () => {
    const pid = await deadPid();
    for (let round = 0; round < 10; round++) {
      const stateDir = tempDir();
      const racers = await Promise.all(Array.from({ length: 4 }, () => lockChild(stateDir)));
      writeLockRecord(stateDir, { pid });
      for (const racer of racers) racer.process.stdin!.write('go\n');
      const outcomes = await Promise.all(racers.map((racer) => racer.nextLine()));
      assert.equal(outcomes.filter((outcome) => outcome === 'won').length, 1, `round ${round}: ${outcomes.join(', ')}`);
      assert.equal(outcomes.filter((outcome) => outcome === 'STATE_DIR_LOCKED').length, 3, outcomes.join(', '));
      for (const racer of racers) racer.process.stdin!.end();
      await Promise.all(racers.map((racer) => racer.exited));
      assert.deepEqual(readdirSync(stateDir), [], 'released, and no claim or draft left behind');
    }
  });

  test('a takeover abandoned midway by a crashed starter does not block the next one', async () => {
    const pid = await deadPid();
    const stateDir = tempDir();
    const staleToken = randomUUID();
    writeLockRecord(stateDir, { pid, token: staleToken });
    // The crashed starter had claimed the stale lock, and left its draft behind.
    const crashed = { pid, startTime: 1, bootId: BOOT_ID, token: randomUUID(), acquiredAt: 0 };
    writeFileSync(path.join(stateDir, `${LOCK_FILE}.claim-${staleToken}`), JSON.stringify(crashed));
    writeFileSync(path.join(stateDir, `${LOCK_FILE}.draft-${pid}-1-${crashed.token}`), JSON.stringify(crashed));
    const lock = await acquireStateLock(stateDir);
    assert.deepEqual(readdirSync(stateDir), [LOCK_FILE], 'the claim and the draft were swept');
    await lock.release();
  });

  test('a takeover in progress by a live starter is reported as such', async () => {
    const stateDir = tempDir();
    const staleToken = randomUUID();
    writeLockRecord(stateDir, { pid: await deadPid(), token: staleToken });
    const live = { pid: process.pid, startTime: ownStartTime(), bootId: BOOT_ID, token: randomUUID(), acquiredAt: 0 };
    writeFileSync(path.join(stateDir, `${LOCK_FILE}.claim-${staleToken}`), JSON.stringify(live));
    await assert.rejects(acquireStateLock(stateDir), isError('STATE_DIR_LOCKED', /being taken over/, new RegExp(`pid ${process.pid}\\b`)));
  });

  test('release leaves alone a lock that is no longer its own', async () => {
    const stateDir = tempDir();
    const lock = await acquireStateLock(stateDir);
    writeLockRecord(stateDir, { token: 'someone-else' });
    await lock.release();
    assert.equal(readLockRecord(stateDir).token, 'someone-else');
  });

  test('refuses a stateDir that is a file, writable by others, a symlink, or holds a foreign lock', async () => {
    const root = tempDir();
    const file = path.join(root, 'file');
    writeFileSync(file, 'x');
    await assert.rejects(acquireStateLock(file), isError('STATE_DIR_INVALID', escape(file), /not a directory/));
    await assert.rejects(acquireStateLock(path.join(file, 'below')), isError('STATE_DIR_INVALID', /cannot be created/));

    const open = path.join(root, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    await assert.rejects(acquireStateLock(open), isError('STATE_DIR_INVALID', /writable by its group or by others \(mode 0777\)/, /chmod 700/));
    chmodSync(open, 0o770);
    await assert.rejects(acquireStateLock(open), isError('STATE_DIR_INVALID', /mode 0770/));

    const real = path.join(root, 'real');
    const link = path.join(root, 'link');
    mkdirSync(real, { mode: 0o700 });
    symlinkSync(real, link);
    await assert.rejects(acquireStateLock(link), isError('STATE_DIR_INVALID', escape(link), /symbolic link/));

    writeFileSync(path.join(real, LOCK_FILE), 'not json');
    await assert.rejects(acquireStateLock(real), isError('STATE_DIR_INVALID', /not a usable shuma lock/, /remove it/));
    assert.deepEqual(readdirSync(real), [LOCK_FILE], 'nothing left behind by the refused attempts');
  });
});

// ── the snapshot file ────────────────────────────────────────────────────────────────

function snapshotPath(stateDir: string): string {
  return path.join(stateDir, SNAPSHOT_FILE);
}

function assertCorrupt(read: SnapshotRead, reason: RegExp): { reason: string; keptAs: string } {
  assert.equal(read.status, 'corrupt', JSON.stringify(read));
  if (read.status !== 'corrupt') throw new Error('unreachable');
  assert.match(read.reason, reason);
  return read;
}

/** msgpack of the envelope, as another (or an older, or a malicious) writer would make it. */
function envelope(packr: Packr, data: unknown, format: unknown = 1): Uint8Array {
  return Buffer.from(packr.pack({ format, writtenAt: Date.now(), data }));
}

const plainPackr = new Packr({ useRecords: false });

/** 100,000 nested arrays (0x91: an array of one item) as the envelope's data, built by hand. */
function deeplyNested(): Uint8Array {
  const head = envelope(plainPackr, null);
  assert.equal(head[head.length - 1], 0xc0, 'data (nil) is the last item of the envelope');
  return Buffer.concat([head.subarray(0, -1), Buffer.alloc(100_000, 0x91), Buffer.from([0xc0])]);
}

function cyclicEnvelope(): Uint8Array {
  const data: Record<string, unknown> = { name: 'loop' };
  data.self = data;
  return envelope(new Packr({ useRecords: false, structuredClone: true }), data);
}

/** Resolves when a snapshot temp file is created in `dir` (or after 5 s, to kill anyway). */
async function tempFileCreated(dir: string): Promise<void> {
  const seen = new Promise<void>((resolve) => {
    const watcher = watch(dir, (_event, name) => {
      if (!name?.startsWith(`${SNAPSHOT_FILE}.tmp-`)) return;
      watcher.close();
      resolve();
    });
    setTimeout(() => {
      watcher.close();
      resolve();
    }, 5_000).unref();
  });
  await seen;
}

describe('snapshot file', () => {
  test('round trip of a nested value; the file is 0600', async () => {
    const stateDir = tempDir();
    let nested: unknown = 'bottom';
    for (let i = 0; i < 100; i++) nested = { level: i, inner: [nested] };
    const value = {
      workspaces: [
        {
          id: '01J9ZC6Q1V4M3X8K2R5T7W0YBN',
          spec: { label: 'build', env: { A: '1', B: 'é☃' }, ttlMs: null },
          actor: { status: 'active', value: { running: 'idle' }, context: { deadline: 1_700_000_000_123.5 }, children: {} },
          numbers: [0, -1, 127, 128, -33, 65_536, 2 ** 40, -(2 ** 40), 0.1, Number.MAX_SAFE_INTEGER],
          flags: [true, false, null],
        },
      ],
      missing: undefined,
      at: new Date(1_700_000_000_000),
      nested,
    };
    const before = Date.now();
    const written = await writeSnapshotFile(stateDir, value);
    const stat = statSync(snapshotPath(stateDir));
    assert.equal(stat.mode & 0o777, 0o600);
    assert.equal(written.bytes, stat.size);
    assert.ok(written.ms >= 0);
    const read = await readSnapshotFile(stateDir);
    assert.equal(read.status, 'ok');
    if (read.status !== 'ok') return;
    assert.deepEqual(read.data, value);
    assert.ok(read.writtenAt >= before && read.writtenAt <= Date.now());
    assert.deepEqual(readdirSync(stateDir), [SNAPSHOT_FILE], 'no temp file left');
  });

  test('a missing file reads as missing', async () => {
    assert.deepEqual(await readSnapshotFile(tempDir()), { status: 'missing' });
  });

  test('msgpackr alone would accept what the reader refuses', () => {
    // Why the reader checks the bytes itself: a restricted Unpackr still decodes records and
    // Sets, and overflows the stack on deep nesting.
    const restricted = new Unpackr({ useRecords: false, structuredClone: false, moreTypes: false, mapsAsObjects: true });
    assert.deepEqual(restricted.unpack(new Packr({ useRecords: true }).pack({ a: 1 })), { a: 1 });
    assert.ok(restricted.unpack(new Packr({ moreTypes: true }).pack(new Set([1]))) instanceof Set);
    assert.throws(() => restricted.unpack(deeplyNested()), RangeError);
  });

  const badFiles: Array<{ what: string; bytes: () => Uint8Array; reason: RegExp; maxBytes?: number }> = [
    {
      what: 'a truncated file',
      bytes: () => envelope(plainPackr, { list: Array.from({ length: 100 }, (_, i) => `item ${i}`) }).subarray(0, 500),
      reason: /truncated/,
    },
    { what: 'a garbage file', bytes: () => randomBytes(4096), reason: /./ },
    { what: 'text', bytes: () => Buffer.from('{"format":1,"writtenAt":0,"data":null}'), reason: /garbage follow the value/ },
    { what: 'an empty file', bytes: () => new Uint8Array(0), reason: /empty/ },
    { what: 'a file over the cap', bytes: () => envelope(plainPackr, 'x'.repeat(1000)), reason: /over the 256-byte cap/, maxBytes: 256 },
    { what: 'format 99', bytes: () => envelope(plainPackr, {}, 99), reason: /newer shuma, in snapshot format 99; this version reads formats up to 2/ },
    { what: 'format 0', bytes: () => envelope(plainPackr, {}, 0), reason: /format field \(0\)/ },
    { what: 'a format that is a string', bytes: () => envelope(plainPackr, {}, '1'), reason: /format field \("1"\)/ },
    { what: 'no envelope', bytes: () => Buffer.from(plainPackr.pack([1, 2, 3])), reason: /not a snapshot envelope/ },
    { what: 'no data', bytes: () => Buffer.from(plainPackr.pack({ format: 1, writtenAt: 0 })), reason: /no data field/ },
    { what: 'a bad writtenAt', bytes: () => Buffer.from(plainPackr.pack({ format: 1, writtenAt: 'noon', data: 1 })), reason: /writtenAt/ },
    { what: 'deep nesting', bytes: deeplyNested, reason: new RegExp(`nest deeper than ${SNAPSHOT_MAX_DEPTH} levels`) },
    { what: 'a record-extension payload', bytes: () => envelope(new Packr({ useRecords: true }), { a: 1 }), reason: /record extension/ },
    { what: 'a structured-clone cycle', bytes: cyclicEnvelope, reason: /structured-clone/ },
    { what: 'a Set', bytes: () => envelope(new Packr({ useRecords: false, moreTypes: true }), new Set([1])), reason: /a Set/ },
    { what: 'trailing garbage', bytes: () => Buffer.concat([envelope(plainPackr, 1), Buffer.from([0])]), reason: /1 bytes of garbage/ },
    { what: 'the unused byte 0xc1', bytes: () => Buffer.from([0xc1]), reason: /0xc1/ },
  ];

  for (const bad of badFiles) {
    test(`${bad.what} is corrupt: kept aside intact, and the next read is missing`, async () => {
      const stateDir = tempDir();
      const bytes = bad.bytes();
      writeFileSync(snapshotPath(stateDir), bytes, { mode: 0o600 });
      const read = await readSnapshotFile(stateDir, bad.maxBytes === undefined ? {} : { maxBytes: bad.maxBytes });
      const { keptAs } = assertCorrupt(read, bad.reason);
      assert.equal(path.dirname(keptAs), stateDir);
      assert.match(path.basename(keptAs), /^shuma\.snapshot\.corrupt-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z$/);
      assert.deepEqual(readFileSync(keptAs), Buffer.from(bytes));
      assert.equal(existsSync(snapshotPath(stateDir)), false);
      assert.deepEqual(await readSnapshotFile(stateDir), { status: 'missing' });
    });
  }

  test('a symlink or a directory in the file’s place is corrupt too', async () => {
    const stateDir = tempDir();
    writeFileSync(path.join(stateDir, 'elsewhere'), envelope(plainPackr, 1));
    symlinkSync(path.join(stateDir, 'elsewhere'), snapshotPath(stateDir));
    const { keptAs } = assertCorrupt(await readSnapshotFile(stateDir), /symbolic link/);
    assert.ok(lstatSync(keptAs).isSymbolicLink());
    mkdirSync(snapshotPath(stateDir));
    const second = assertCorrupt(await readSnapshotFile(stateDir), /not a regular file/);
    assert.ok(statSync(second.keptAs).isDirectory());
    assert.deepEqual(await readSnapshotFile(stateDir), { status: 'missing' });
  });

  test('a corrupt file never replaces one kept earlier, even within the same millisecond', async () => {
    const stateDir = tempDir();
    mock.timers.enable({ apis: ['Date'], now: 1_700_000_000_000 });
    try {
      const kept: string[] = [];
      for (let i = 0; i < 3; i++) {
        writeFileSync(snapshotPath(stateDir), `garbage ${i}`);
        kept.push(assertCorrupt(await readSnapshotFile(stateDir), /./).keptAs);
      }
      assert.deepEqual(kept.map((file) => path.basename(file)), [
        'shuma.snapshot.corrupt-2023-11-14T22-13-20.000Z',
        'shuma.snapshot.corrupt-2023-11-14T22-13-20.000Z-1',
        'shuma.snapshot.corrupt-2023-11-14T22-13-20.000Z-2',
      ]);
      kept.forEach((file, i) => assert.equal(readFileSync(file, 'utf8'), `garbage ${i}`));
    } finally {
      mock.timers.reset();
    }
  });

  test('keepSnapshotAside sets aside a file the runtime cannot use, under its label', async () => {
    const stateDir = tempDir();
    await writeSnapshotFile(stateDir, { not: 'a state' });
    const keptAs = await keepSnapshotAside(stateDir, 'invalid');
    assert.match(path.basename(keptAs), /^shuma\.snapshot\.invalid-/);
    assert.deepEqual(await readSnapshotFile(stateDir), { status: 'missing' });
    await assert.rejects(keepSnapshotAside(stateDir, '../escape'), isError('INVALID_ARGUMENT'));
  });

  test('concurrent writes do not interleave: they land in call order', async () => {
    const stateDir = tempDir();
    const finished: number[] = [];
    await Promise.all(
      Array.from({ length: 30 }, (_, seq) =>
        writeSnapshotFile(stateDir, { seq, payload: 'x'.repeat(seq * 997) }).then(() => finished.push(seq)),
      ),
    );
    assert.deepEqual(finished, Array.from({ length: 30 }, (_, seq) => seq));
    const read = await readSnapshotFile(stateDir);
    assert.equal(read.status, 'ok');
    if (read.status === 'ok') assert.deepEqual(read.data, { seq: 29, payload: 'x'.repeat(29 * 997) });
    assert.deepEqual(readdirSync(stateDir), [SNAPSHOT_FILE]);
  });

  test('a temp file left by a crash is removed at the next write', async () => {
    const stateDir = tempDir();
    const leftover = path.join(stateDir, `${SNAPSHOT_FILE}.tmp-12345-${randomUUID()}`);
    writeFileSync(leftover, 'half a snapshot');
    await writeSnapshotFile(stateDir, 1);
    assert.deepEqual(readdirSync(stateDir), [SNAPSHOT_FILE]);
  });

  test('a value that would not read back is refused, and the old file stays', async () => {
    const stateDir = tempDir();
    await writeSnapshotFile(stateDir, 'old');
    let deep: unknown = null;
    for (let i = 0; i < SNAPSHOT_MAX_DEPTH + 10; i++) deep = [deep];
    await assert.rejects(writeSnapshotFile(stateDir, deep), isError('SNAPSHOT_WRITE_FAILED', /nest deeper/));
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    await assert.rejects(writeSnapshotFile(stateDir, cycle), isError('SNAPSHOT_WRITE_FAILED', /cannot be encoded/));
    const read = await readSnapshotFile(stateDir);
    assert.equal(read.status === 'ok' && read.data, 'old');
    assert.deepEqual(readdirSync(stateDir), [SNAPSHOT_FILE]);
  });

  /** Polls until the snapshot file exists: the writer is another process, with no event to wait on. */
  async function snapshotWritten(stateDir: string): Promise<void> {
    while (!existsSync(snapshotPath(stateDir))) await delay(5);
  }

  test('a writer SIGKILLed at random moments always leaves a complete snapshot', { timeout: 120_000 }, async (t) => {
    const WRITER = `
      const { writeSnapshotFile } = await import(process.argv[1]);
      // Long strings: cheap to encode, long to write and fsync, so many kills land mid-write.
      const itemsOf = (seq) => (seq * 7919) % 3000;
      process.stdout.write('ready\\n');
      for (let seq = 1; ; seq++) {
        const items = Array.from({ length: itemsOf(seq) }, (_, i) => ({ i, text: 'x'.repeat(1000 + (i % 64)) }));
        await writeSnapshotFile(process.argv[2], { seq, items });
      }
    `;
    const stateDir = tempDir();
    let everWritten = false;
    let midWrite = 0;
    for (let kill = 0; kill < 20; kill++) {
      const writer = new Child(WRITER, [SNAPSHOT_MODULE, stateDir]);
      assert.equal(await writer.nextLine(), 'ready');
      // The first kill waits for a complete snapshot (a loaded machine may take long over one);
      // then half the kills at a random moment, half the moment a temp file appears: mid-write.
      if (kill === 0) await snapshotWritten(stateDir);
      else if (kill % 2 === 0) await delay(Math.random() * 80);
      else await tempFileCreated(stateDir);
      await writer.kill();
      if (readdirSync(stateDir).some((name) => name.startsWith(`${SNAPSHOT_FILE}.tmp-`))) midWrite++;
      const read = await readSnapshotFile(stateDir);
      if (read.status === 'missing') {
        assert.equal(everWritten, false, `kill ${kill}: a complete snapshot went missing`);
        continue;
      }
      assert.equal(read.status, 'ok', `kill ${kill}: ${JSON.stringify(read)}`);
      if (read.status !== 'ok') return;
      everWritten = true;
      const { seq, items } = read.data as { seq: number; items: Array<{ i: number; text: string }> };
      assert.equal(items.length, (seq * 7919) % 3000, `kill ${kill}: snapshot ${seq} is whole`);
      items.forEach((item, i) => assert.deepEqual(item, { i, text: 'x'.repeat(1000 + (i % 64)) }));
    }
    t.diagnostic(`${midWrite} of 20 kills landed while a temp file was being written`);
    assert.ok(everWritten, 'at least one write completed');
    await writeSnapshotFile(stateDir, 'after');
    assert.deepEqual(readdirSync(stateDir), [SNAPSHOT_FILE], 'the temp files left by the kills are gone');
  });
});
