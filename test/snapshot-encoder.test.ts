import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { encode } from '../src/protocol/codec.js';
import { isShumaError } from '../src/protocol/errors.js';
import type { PlainValue } from '../src/protocol/actor-records.js';
import type { PersistedWorkspace, SnapshotData } from '../src/host/persistence/snapshot-data.js';
import { SNAPSHOT_MAX_DEPTH, SnapshotEncoder } from '../src/host/persistence/snapshot-encoder.js';
import { SNAPSHOT_FILE, readSnapshotFile, writeSnapshotData, writeSnapshotFile } from '../src/host/persistence/snapshot-file.js';

// The runtime's snapshot writes keep each workspace's bytes from one write to the next. What
// must hold: the file is the same as encoding it whole (old readers read it), a change anywhere
// in a record (a child's snapshot replaced, its history amended) is written, and what would not
// read back is refused whatever part it hides in.

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

test('the bytes are those of the whole envelope encoded at once, written or kept (20 workspaces: map and array headers past 15)', () => {
  const encoder = new SnapshotEncoder();
  const records = Array.from({ length: 20 }, (_, n) => record(n));
  const envelope = { format: 1, writtenAt: 1_700_000_000_999, data: data(records) };
  assert.deepEqual(encoder.encodeEnvelope(envelope), encode(envelope));
  assert.equal(encoder.encodedLast, 20);
  // The next write, every record new but equal, around the same actor (as collect makes them): all kept, same bytes.
  const again = { ...envelope, data: data(records.map((r) => ({ ...structuredClone(r), actor: r.actor }))) };
  assert.deepEqual(encoder.encodeEnvelope(again), encode(envelope));
  assert.equal(encoder.encodedLast, 0);
});

test('a change anywhere in a record is written: a child snapshot replaced in place, the history, a new actor', () => {
  const encoder = new SnapshotEncoder();
  const records = [record(1), record(2), record(3)];
  encoder.encodeEnvelope({ format: 1, writtenAt: 1, data: data(records) });
  // As a persistedChild message does: the same actor, one child's snapshot replaced.
  const actor = records[0]!.actor as { children: Record<string, { snapshot: unknown }> };
  actor.children.c1!.snapshot = { status: 'active', value: 'backoff', context: { restarts: 9 } };
  const next = [{ ...records[0]! }, { ...records[1]!, history: { commands: [], pipelines: [], runs: [], why: { k: [{ at: 1, text: 'exited' }] } } }, { ...records[2]!, actor: structuredClone(records[2]!.actor) }];
  const envelope = { format: 1, writtenAt: 2, data: data(next) };
  assert.deepEqual(encoder.encodeEnvelope(envelope), encode(envelope));
  assert.equal(encoder.encodedLast, 3);
});

test("a change made in place to one of the runtime's own objects in a record (a Slurm job's nodes) is written", () => {
  const encoder = new SnapshotEncoder();
  const placement = { kind: 'slurm' as const, jobId: '42', nodes: ['n1', 'n2'] };
  const actor = record(1).actor;
  const make = () => ({ ...record(1), actor, placement });
  encoder.encodeEnvelope({ format: 1, writtenAt: 1, data: data([make()]) });
  placement.nodes = ['n1'];
  const envelope = { format: 1, writtenAt: 2, data: data([make()]) };
  assert.deepEqual(encoder.encodeEnvelope(envelope), encode(envelope));
  assert.equal(encoder.encodedLast, 1);
  // Unchanged since: kept.
  assert.deepEqual(encoder.encodeEnvelope(envelope), encode(envelope));
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

test('a file larger than the first block gathered (a cold write of many records) is still the whole envelope encoded at once', () => {
  const encoder = new SnapshotEncoder();
  // ~2 KiB each: 400 records span several of the encoder's blocks.
  const big = (n: number) => ({ ...record(n), spec: { label: `w${n}`, env: { PAD: 'x'.repeat(2000), N: String(n) } } as PersistedWorkspace['spec'] });
  const records = Array.from({ length: 400 }, (_, n) => big(n));
  const envelope = { format: 1, writtenAt: 5, data: data(records) };
  const first = encoder.encodeEnvelope(envelope);
  assert.ok(first.length > 800_000, `${first.length} bytes`);
  assert.deepEqual(first, encode(envelope));
  // Then one record in ten changed: the rest is copied from the first file's bytes.
  const next = records.map((r, n) => (n % 10 === 0 ? { ...big(n), createdAt: 1 } : { ...r }));
  const again = { format: 1, writtenAt: 6, data: data(next) };
  assert.deepEqual(encoder.encodeEnvelope(again), encode(again));
  assert.equal(encoder.encodedLast, 40);
});
