import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { Packr, Unpackr } from 'msgpackr';
import { decodeUntrusted } from '../src/protocol/codec.js';
import { SNAPSHOT_FILE, SNAPSHOT_MAX_DEPTH, readSnapshotFile, writeSnapshotFile } from '../src/host/persistence/snapshot-file.js';
import { SnapshotEncoder } from '../src/host/persistence/snapshot-encoder.js';
import { createRuntime } from '../src/index.js';
import { FIXTURES } from './helpers.js';

// Snapshot format 2 (msgpackr records, their shapes in the file) beside format 1 (plain msgpack):
// files of format 1 still restore; a damaged file of format 2 is refused as any damaged file is
// (kept aside, reported, the runtime starts empty), wherever the damage lies, the records' bytes
// included; a reader of format 1 sees a file of format 2 as newer, not as garbage.

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'shuma-format-'));
  dirs.push(dir);
  return dir;
}

const plain = new Packr({ useRecords: false });
const plainReader = new Unpackr({ useRecords: false, mapsAsObjects: true });

interface Envelope2 {
  format: number;
  writtenAt: number;
  data: Uint8Array;
  structures: unknown;
}

/** A format-2 file of `value`, taken apart: its data bytes and its table, to damage one of them. */
function partsOf(value: unknown): Envelope2 {
  return plainReader.unpack(new SnapshotEncoder().encode(1_700_000_000_000, value)) as Envelope2;
}

function reassembled(parts: Partial<Envelope2>): Uint8Array {
  return plain.pack({ ...partsOf(sample()), ...parts });
}

function sample(): unknown {
  return { workspaces: Array.from({ length: 40 }, (_, i) => ({ id: `w${i}`, env: { [`K${i % 3}`]: 'v' }, n: [i, i * 1000, -i - 1], at: 1.5 * i })) };
}

describe('format 2 files the reader refuses, kept aside intact', () => {
  const bad: Array<{ what: string; bytes: () => Uint8Array; reason: RegExp }> = [
    { what: 'a file cut in the middle of its data', bytes: () => new SnapshotEncoder().encode(1, sample()).subarray(0, 300), reason: /truncated/ },
    {
      what: 'data bytes cut short inside a whole envelope',
      bytes: () => reassembled({ data: partsOf(sample()).data.subarray(0, 200) }),
      reason: /truncated/,
    },
    {
      what: 'a record whose shape is not in the table',
      bytes: () => reassembled({ structures: (partsOf(sample()).structures as unknown[]).slice(0, 1) }),
      reason: /record id \d+ at byte \d+ has no shape in the file/,
    },
    { what: 'no table', bytes: () => reassembled({ structures: undefined }), reason: /structures field is not a list/ },
    { what: 'a shape with a key that is not a string', bytes: () => reassembled({ structures: [['a', 1]] }), reason: /record shape 0 is not a list of keys/ },
    { what: 'data that is not bytes', bytes: () => reassembled({ data: { a: 1 } as unknown as Uint8Array }), reason: /not the bytes of packed records/ },
    {
      what: "a shape defined inline (msgpackr's own records), which shuma never writes",
      bytes: () => reassembled({ data: new Packr({ useRecords: true }).pack({ a: 1 }), structures: [] }),
      reason: /record extension/,
    },
    {
      what: 'data nesting past the cap',
      bytes: () => reassembled({ data: Buffer.concat([Buffer.alloc(SNAPSHOT_MAX_DEPTH, 0x91), Buffer.from([0xc0])]) }),
      reason: new RegExp(`nest deeper than ${SNAPSHOT_MAX_DEPTH - 1} levels`),
    },
    { what: 'garbage after the data', bytes: () => reassembled({ data: Buffer.concat([partsOf(sample()).data, Buffer.from([1])]) }), reason: /1 bytes of garbage/ },
  ];
  for (const { what, bytes, reason } of bad) {
    test(`${what}: corrupt, kept aside, the next read is missing`, async () => {
      const stateDir = tempDir();
      const file = bytes();
      writeFileSync(path.join(stateDir, SNAPSHOT_FILE), file);
      const read = await readSnapshotFile(stateDir);
      assert.equal(read.status, 'corrupt', JSON.stringify(read));
      if (read.status !== 'corrupt') return;
      assert.match(read.reason, reason);
      assert.deepEqual(readFileSync(read.keptAs), Buffer.from(file));
      assert.deepEqual(await readSnapshotFile(stateDir), { status: 'missing' });
    });
  }

  test('the same bytes, undamaged, read back', async () => {
    const stateDir = tempDir();
    writeFileSync(path.join(stateDir, SNAPSHOT_FILE), reassembled({}));
    const read = await readSnapshotFile(stateDir);
    assert.equal(read.status, 'ok', JSON.stringify(read));
    assert.deepEqual(read.status === 'ok' && read.data, sample());
  });
});

test("files read one after another are each read with their own table: the same data under a table of other keys reads as those keys", async () => {
  // The reader keeps the decoder of the last table read for a file whose table is the same.
  const parts = partsOf(sample());
  const shapes = parts.structures as string[][];
  const renamed = shapes.map((keys) => keys.map((key) => `${key}_`));
  const rename = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(rename)
      : typeof value === 'object' && value !== null
        ? Object.fromEntries(Object.entries(value).map(([key, v]) => [`${key}_`, rename(v)]))
        : value;
  const readFile = async (bytes: Uint8Array) => {
    const stateDir = tempDir();
    writeFileSync(path.join(stateDir, SNAPSHOT_FILE), bytes);
    const read = await readSnapshotFile(stateDir);
    assert.equal(read.status, 'ok', JSON.stringify(read));
    return read.status === 'ok' ? read.data : undefined;
  };
  const own = plain.pack(parts);
  const other = plain.pack({ ...parts, structures: renamed });
  assert.deepEqual(await readFile(own), sample());
  assert.deepEqual(await readFile(own), sample());
  // The envelope of the state (its `workspaces` key) is plain msgpack: the records inside are renamed.
  assert.deepEqual(await readFile(other), { workspaces: rename((sample() as { workspaces: unknown }).workspaces) });
  assert.deepEqual(await readFile(own), sample());
});

test('a reader of format 1 decodes a format-2 envelope and finds a newer format, not garbage', async () => {
  const stateDir = tempDir();
  await writeSnapshotFile(stateDir, sample());
  // What an older shuma does: its structure walk (no record shapes), plain decode, then the format check.
  const decoded = decodeUntrusted(readFileSync(path.join(stateDir, SNAPSHOT_FILE)), SNAPSHOT_MAX_DEPTH);
  assert.equal(decoded.ok, true, JSON.stringify(decoded));
  assert.equal(decoded.ok && (decoded.value as { format: unknown }).format, 2);
});

test('a format-1 file still reads: plain msgpack, as shuma wrote it before format 2', async () => {
  const stateDir = tempDir();
  const data = { workspaces: [{ id: 'w', n: [64, 127, 128] }], at: new Date(1_700_000_000_000), none: undefined };
  writeFileSync(path.join(stateDir, SNAPSHOT_FILE), plain.pack({ format: 1, writtenAt: 5, data }));
  assert.deepEqual(await readSnapshotFile(stateDir), { status: 'ok', data, writtenAt: 5 });
});

describe('a runtime on a state directory', () => {
  function stateDirWith(fixture: string): string {
    const dir = path.join(tempDir(), 'state');
    mkdirSync(dir, { mode: 0o700 });
    copyFileSync(path.join(FIXTURES, fixture), path.join(dir, SNAPSHOT_FILE));
    return dir;
  }

  test('restores a format-1 snapshot written by shuma before format 2, then writes format 2 and restores that', async () => {
    // Written by the runtime of main at 431eb5e: alpha (an environment), beta (a command that
    // exited 3), a saved pipeline.
    const dir = stateDirWith('format-1.snapshot');
    const expected = [
      { id: '01M96JHP7JBFCB2H012ZCFRAC7', label: 'alpha' },
      { id: '01M96JHP88DQKFJ6EWVQVCHQMA', label: 'beta' },
    ];
    for (const round of [1, 2]) {
      const rt = await createRuntime({ stateDir: dir, workers: 1 });
      try {
        assert.deepEqual(rt.warnings, [], `round ${round}`);
        const listed = await rt.listWorkspaces();
        assert.deepEqual(listed.map((ws) => ({ id: ws.id, label: ws.label })).sort((a, b) => a.id.localeCompare(b.id)), expected);
        const beta = rt.workspace('01M96JHP88DQKFJ6EWVQVCHQMA');
        assert.ok(beta !== undefined);
        const commands = await beta.commands();
        assert.deepEqual(commands.map((c) => [c.id, c.label, c.alive, c.exitStatus]), [['01M96JHP8YT5XQGXTAMTA851GE', 'once', false, 3]]);
        assert.deepEqual(await rt.listSavedPipelines(), ['nightly']);
      } finally {
        await rt.shutdown();
      }
      const written = plainReader.unpack(readFileSync(path.join(dir, SNAPSHOT_FILE))) as { format: number };
      assert.equal(written.format, 2, `round ${round}: the shutdown writes format 2`);
    }
  });

  test('a format-2 snapshot damaged inside its records: kept aside, reported, the runtime starts empty', async () => {
    const dir = path.join(tempDir(), 'state');
    const rt1 = await createRuntime({ stateDir: dir, workers: 1 });
    await rt1.createWorkspace({ label: 'x' });
    await rt1.shutdown();
    // The envelope whole and the data's bytes too, but the table cut to its first shape.
    const envelope = plainReader.unpack(readFileSync(path.join(dir, SNAPSHOT_FILE))) as Envelope2;
    const damaged = plain.pack({ ...envelope, structures: (envelope.structures as unknown[]).slice(0, 1) });
    writeFileSync(path.join(dir, SNAPSHOT_FILE), damaged);
    const rt = await createRuntime({ stateDir: dir, workers: 1 });
    try {
      assert.equal(rt.warnings.length, 1, rt.warnings.join('\n'));
      assert.match(rt.warnings[0]!, /could not be read \(record id \d+ at byte \d+ has no shape in the file\).* kept as .*shuma\.snapshot\.corrupt-/);
      assert.deepEqual(await rt.listWorkspaces(), []);
      const kept = readdirSync(dir).find((name) => name.startsWith('shuma.snapshot.corrupt-'));
      assert.ok(kept !== undefined && existsSync(path.join(dir, kept)));
      assert.deepEqual(readFileSync(path.join(dir, kept)), damaged);
    } finally {
      await rt.shutdown();
    }
  });
});
