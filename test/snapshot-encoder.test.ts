import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { isShumaError } from '../src/protocol/errors.js';
import type { PlainValue } from '../src/protocol/actor-records.js';
import type { PersistedWorkspace, SnapshotData } from '../src/host/persistence/snapshot-data.js';
import { SNAPSHOT_MAX_DEPTH, SnapshotEncoder, UnchangedWorkspace, counted } from '../src/host/persistence/snapshot-encoder.js';
import { SNAPSHOT_FILE, readSnapshotFile, writeSnapshotData, writeSnapshotFile } from '../src/host/persistence/snapshot-file.js';
import { MAX_SHAPES, startNewTable } from '../src/host/persistence/snapshot-records.js';

// The runtime's snapshot writes keep each workspace's bytes from one write to the next, while
// its change count stays (collect.ts hands it with each record). What must hold: the file reads
// back as the state it was given (with the record shapes it carries, nothing else), a kept
// record's bytes are those a fresh pack would give, a record whose count moved or that has none
// (amended after collect) is written, a placement changed in place is written, and what would
// not read back is refused whatever part it hides in. That the runtime bumps the count at every
// change is persistence.test.ts's "every write equals a fresh one".

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'shuma-encoder-'));
  dirs.push(dir);
  return dir;
}

function record(n: number): PersistedWorkspace {
  return {
    id: `WS${String(n).padStart(4, '0')}`,
    spec: { label: `w${n}`, env: { N: String(n) }, ttlMs: 3_600_000 } as PersistedWorkspace['spec'],
    createdAt: 1_700_000_000_000 + n,
    actor: {
      status: 'active',
      value: { running: 'supervising' },
      context: { id: `WS${n}`, deadline: 1_700_000_000_123.5 + n },
      children: { c1: { snapshot: { status: 'active', value: 'running', context: { restarts: n } }, src: 'command', syncSnapshot: false } },
    },
    commands: [],
    pipelines: [],
    processes: [],
    history: { commands: [], pipelines: [], runs: [], why: {} },
  };
}

function data(records: PersistedWorkspace[]): SnapshotData {
  return { runtimeId: 'RT1', savedPipelines: {}, workspaces: records };
}

/** What readSnapshotFile makes of `bytes`, as the file of a state directory of its own. */
async function readBack(bytes: Uint8Array): Promise<unknown> {
  const stateDir = tempDir();
  writeFileSync(path.join(stateDir, SNAPSHOT_FILE), bytes);
  const read = await readSnapshotFile(stateDir);
  assert.equal(read.status, 'ok', JSON.stringify(read));
  return read.status === 'ok' ? read.data : undefined;
}

test('the file reads back as the state, written or kept, and kept bytes are those a fresh write gives (20 workspaces: map and array headers past 15)', async () => {
  const encoder = new SnapshotEncoder();
  const records = Array.from({ length: 20 }, (_, n) => counted(record(n), 0));
  const first = encoder.encode(1_700_000_000_999, data(records));
  assert.equal(encoder.encodedLast, 20);
  assert.deepEqual(await readBack(first), data(records));
  assert.deepEqual(first, new SnapshotEncoder().encode(1_700_000_000_999, data(records)));
  // The next write, every record new, at the same change counts (as collect makes them): all kept, same bytes.
  const again = data(records.map((r) => counted({ ...structuredClone(r), actor: r.actor }, 0)));
  assert.deepEqual(encoder.encode(1_700_000_000_999, again), first);
  assert.equal(encoder.encodedLast, 0);
});

test('a record whose change count moved, or that has none (amended after collect, as the shutdown amends its exits), is written', async () => {
  const encoder = new SnapshotEncoder();
  const records = [counted(record(1), 4), counted(record(2), 4), counted(record(3), 4)];
  encoder.encode(1, data(records));
  // As a persistedChild message does: the same actor, one child's snapshot replaced, the count bumped.
  const actor = records[0]!.actor as { children: Record<string, { snapshot: unknown }> };
  actor.children.c1!.snapshot = { status: 'active', value: 'backoff', context: { restarts: 9 } };
  const amended = { ...records[1]!, history: { commands: [], pipelines: [], runs: [], why: { k: [{ at: 1, text: 'exited' }] } } };
  const next = [counted({ ...records[0]! }, 5), amended, counted({ ...records[2]! }, 4)];
  assert.deepEqual(await readBack(encoder.encode(2, data(next))), data(next));
  assert.equal(encoder.encodedLast, 2);
  // Nothing kept of a record without a count: written again at the next write too.
  encoder.encode(3, data(next));
  assert.equal(encoder.encodedLast, 1);
});

test("a change made in place to one of the runtime's own objects in a record (a Slurm job's nodes) is written", async () => {
  const encoder = new SnapshotEncoder();
  const placement = { kind: 'slurm' as const, jobId: '42', nodes: ['n1', 'n2'] };
  const actor = record(1).actor;
  const make = () => counted({ ...record(1), actor, placement }, 0);
  encoder.encode(1, data([make()]));
  placement.nodes = ['n1'];
  const changed = encoder.encode(2, data([make()]));
  assert.equal(encoder.encodedLast, 1);
  assert.deepEqual(await readBack(changed), data([make()]));
  // Unchanged since: kept.
  assert.deepEqual(encoder.encode(2, data([make()])), changed);
  assert.equal(encoder.encodedLast, 0);
});

test('what would not read back is refused, nested in a record, as it is when encoded whole', async () => {
  const stateDir = tempDir();
  const encoder = new SnapshotEncoder();
  await writeSnapshotData(stateDir, data([record(1)]), encoder);
  const before = readFileSync(path.join(stateDir, SNAPSHOT_FILE));
  // Nesting that reaches the cap only with the envelope, data and workspaces around it.
  let deep: PlainValue = null;
  for (let i = 0; i < SNAPSHOT_MAX_DEPTH - 4; i++) deep = [deep];
  const deepRecord = { ...record(2), actor: { deep } };
  await assert.rejects(writeSnapshotFile(stateDir, data([deepRecord])), (e) => isShumaError(e) && /nest deeper/.test(e.message));
  await assert.rejects(writeSnapshotData(stateDir, data([record(1), deepRecord]), encoder), (e) => isShumaError(e) && e.code === 'SNAPSHOT_WRITE_FAILED' && /nest deeper/.test(e.message));
  const cycle: { [key: string]: PlainValue } = {};
  cycle.self = cycle;
  await assert.rejects(writeSnapshotData(stateDir, data([{ ...record(3), actor: cycle }]), encoder), (e) => isShumaError(e) && /cannot be encoded/.test(e.message));
  assert.deepEqual(readFileSync(path.join(stateDir, SNAPSHOT_FILE)), before, 'the old file stays');
  // One level shallower reads back.
  const shallow = { ...record(2), actor: { deep: (deep as PlainValue[])[0]! } };
  await writeSnapshotData(stateDir, data([record(1), shallow]), encoder);
  const read = await readSnapshotFile(stateDir);
  assert.equal(read.status, 'ok');
  assert.deepEqual(read.status === 'ok' && read.data, data([record(1), shallow]));
});

test('a file larger than the first block gathered (a cold write of many records) reads back whole, and so does the next, mostly kept', async () => {
  const encoder = new SnapshotEncoder();
  // ~2 KiB each: 400 records span several of the encoder's blocks.
  const big = (n: number) => ({ ...record(n), spec: { label: `w${n}`, env: { PAD: 'x'.repeat(2000), N: String(n) } } as PersistedWorkspace['spec'] });
  const records = Array.from({ length: 400 }, (_, n) => counted(big(n), 0));
  const first = encoder.encode(5, data(records));
  assert.ok(first.length > 800_000, `${first.length} bytes`);
  assert.deepEqual(await readBack(first), data(records));
  // Then one record in ten changed: the rest is copied from the first file's bytes.
  const next = records.map((r, n) => counted(n % 10 === 0 ? { ...big(n), createdAt: 1 } : { ...r }, n % 10 === 0 ? 1 : 0));
  const again = encoder.encode(6, data(next));
  assert.equal(encoder.encodedLast, 40);
  assert.deepEqual(await readBack(again), data(next));
  // The same bytes as a fresh encoder's: kept records' bytes are what packing them now gives.
  assert.deepEqual(again, new SnapshotEncoder().encode(6, data(next)));
});

test('past the most record shapes a table holds, objects are written as maps, and the next write starts a new table', async () => {
  const encoder = new SnapshotEncoder();
  // Each workspace's environment has keys of its own: a shape each.
  const keyed = (n: number) => counted({ ...record(n), spec: { label: `w${n}`, env: { [`ONLY_${n}`]: '1' } } as PersistedWorkspace['spec'] }, 0);
  const records = Array.from({ length: MAX_SHAPES + 50 }, (_, n) => keyed(n));
  const full = encoder.encode(7, data(records));
  assert.deepEqual(await readBack(full), data(records));
  // Everything kept would be right, but the table is full of one-off shapes: all packed again, in a new one.
  const next = encoder.encode(8, data(records.slice(0, 10)));
  assert.equal(encoder.encodedLast, 10);
  assert.deepEqual(await readBack(next), data(records.slice(0, 10)));
  assert.ok(next.length < 20_000, `the new table holds the shapes in use alone (${next.length} bytes)`);
});

test('a file reads back in a process that never wrote it: the record shapes travel in the file', async () => {
  const encoder = new SnapshotEncoder();
  // Written after earlier writes taught the encoder other shapes than this write's.
  encoder.encode(1, { ...data([record(1)]), extra: [{ p: 1 }, { q: 2, r: 3 }] });
  const stateDir = tempDir();
  await writeSnapshotData(stateDir, data([record(2), record(3)]), encoder);
  const reader = `
    const { readSnapshotFile } = await import(process.argv[1]);
    process.stdout.write(JSON.stringify(await readSnapshotFile(process.argv[2])));
  `;
  const module = new URL('../src/host/persistence/snapshot-file.js', import.meta.url).href;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', reader, module, stateDir], { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  const read = JSON.parse(child.stdout) as { status: string; data: unknown };
  assert.equal(read.status, 'ok');
  assert.deepEqual(read.data, JSON.parse(JSON.stringify(data([record(2), record(3)]))));
});

test('a workspace handed as unchanged is written from its kept bytes, or, once they are gone (a new table), from the record it builds then', async () => {
  const encoder = new SnapshotEncoder();
  const records = [counted(record(1), 3), counted(record(2), 3)];
  const first = encoder.encode(9, data(records));
  assert.ok(encoder.keeps(records[0]!.id, 3));
  assert.equal(encoder.keeps(records[0]!.id, 4), false, 'not at another count');
  let built = 0;
  const unchanged = (r: PersistedWorkspace) => new UnchangedWorkspace(r.id, 3, undefined, () => (built++, structuredClone(r)));
  const state = { runtimeId: 'RT1', savedPipelines: {}, workspaces: records.map(unchanged) };
  assert.deepEqual(encoder.encode(9, state), first);
  assert.equal(built, 0);
  assert.equal(encoder.encodedLast, 0);
  // Another writer started a new table meanwhile: the kept bytes name the old one's ids.
  startNewTable();
  const again = encoder.encode(9, state);
  assert.equal(built, 2);
  assert.deepEqual(await readBack(again), data(records));
  assert.deepEqual(again, new SnapshotEncoder().encode(9, data(records)));
});
