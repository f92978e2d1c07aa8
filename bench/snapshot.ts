// Issue 5's figures: the snapshot file with 1,000 and 10,000 workspaces — write time (msgpack,
// structure check, temp file, fsync, rename, fsync of the directory), size, and read time
// (size cap, structure check, decode, envelope check) — against JSON.stringify + writeFileSync
// (no fsync) and readFileSync + JSON.parse of the same data, in the same run.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Packr } from 'msgpackr';
import { monotonicFactory } from 'ulid';
import {
  SNAPSHOT_FILE,
  SNAPSHOT_MAX_DEPTH,
  readSnapshotFile,
  writeSnapshotFile,
} from '../src/host/persistence/snapshot-file.js';
import { checkStructure } from '../src/protocol/msgpack-check.js';
import { now, progress, quantile, type Line } from './measure.js';

const RUNS = 7;
const KiB = 1024;

/** One workspace as the runtime would persist it: its spec, its id, its TTL, its actor (~1 KB). */
function workspaceRecord(id: string, index: number, at: number): Record<string, unknown> {
  return {
    id,
    createdAt: at - index * 1000,
    spec: {
      label: `workspace-${index}`,
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: `/home/user${index % 50}`, LANG: 'C.UTF-8', SHUMA_WS: id, LOG_LEVEL: 'info' },
      ttlMs: 3_600_000,
    },
    ttlDeadline: at + 3_600_000,
    actor: persistedActor(id, index, at),
  };
}

/** Shaped like XState's getPersistedSnapshot() of a workspace machine with two commands. */
function persistedActor(id: string, index: number, at: number): Record<string, unknown> {
  const command = (n: number) => ({
    key: `cmd-${n}`,
    label: n === 0 ? 'server' : 'worker',
    argv: ['node', n === 0 ? 'server.js' : 'worker.js', '--port', String(8000 + n)],
    pid: 100_000 + index * 2 + n,
    startTime: 4_000_000 + index,
    restarts: (index + n) % 5,
    backoffUntil: n === 1 ? at + 2_000 : null,
    lastExit: { code: 1, signal: null, status: 1, at: at - 500 },
  });
  return {
    status: 'active',
    value: { running: 'supervising' },
    historyValue: {},
    context: {
      id,
      label: `workspace-${index}`,
      deadlines: { ttlAt: at + 3_600_000, graceUntil: null },
      quota: { memoryBytes: 512 * 2 ** 20, cpuPercent: 50, policy: 'kill' },
      stats: { rssBytes: 48_000_000 + index, cpuMs: 1234.5, samples: [1.5, 2.25, 3, 2.75, 1.25, 0.5] },
      commands: [command(0), command(1)],
    },
    children: {
      'cmd-0': { snapshot: { status: 'active', value: 'running', context: { restarts: 0 } }, src: 'command', syncSnapshot: false },
      'cmd-1': { snapshot: { status: 'active', value: 'backoff', context: { restarts: 2 } }, src: 'command', syncSnapshot: false },
    },
  };
}

function snapshotData(count: number): Record<string, unknown> {
  const nextId = monotonicFactory();
  const at = Date.now();
  const workspaces = Array.from({ length: count }, (_, index) => workspaceRecord(nextId(), index, at));
  return { runtimeId: nextId(), workspaces, pipelines: [], savedPipelines: [] };
}

/** Median of `RUNS` timings of `op`, ms: fsync times vary from run to run. */
async function medianMs(op: () => Promise<unknown> | unknown): Promise<number> {
  const times: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    // A collection owed by the previous operation must not land in this one's time.
    globalThis.gc?.();
    const start = now();
    await op();
    times.push(now() - start);
  }
  return quantile(times, 0.5);
}

async function measure(dir: string, count: number): Promise<Line[]> {
  progress(`snapshot: ${count} workspaces`);
  const data = snapshotData(count);
  const jsonFile = path.join(dir, 'baseline.json');
  const writeShuma = await medianMs(() => writeSnapshotFile(dir, data));
  const writeJson = await medianMs(() => writeFileSync(jsonFile, JSON.stringify(data)));
  // Encoding and checking alone, with a Packr configured as the snapshot's: the rest of a write is the disk.
  const packr = new Packr({ useRecords: false, structuredClone: false, moreTypes: false, bundleStrings: false });
  const encodeShuma = await medianMs(() => checkStructure(packr.pack({ format: 1, writtenAt: Date.now(), data }), SNAPSHOT_MAX_DEPTH));
  const encodeJson = await medianMs(() => JSON.stringify(data));
  const readShuma = await medianMs(async () => {
    const read = await readSnapshotFile(dir);
    if (read.status !== 'ok') throw new Error(`the snapshot did not read back: ${JSON.stringify(read)}`);
  });
  const readJson = await medianMs(() => JSON.parse(readFileSync(jsonFile, 'utf8')));
  const sizeShuma = statSync(path.join(dir, SNAPSHOT_FILE)).size;
  const sizeJson = statSync(jsonFile).size;
  const n = count.toLocaleString('en-US');
  return [
    { what: `write, ${n} workspaces (shuma: fsync + rename; baseline: no fsync)`, unit: 'ms', shuma: writeShuma, baseline: writeJson },
    { what: `  of which encoding (pack + structure check vs JSON.stringify)`, unit: 'ms', shuma: encodeShuma, baseline: encodeJson },
    { what: `size, ${n} workspaces`, unit: 'KiB', shuma: sizeShuma / KiB, baseline: sizeJson / KiB },
    { what: `size per workspace`, unit: 'B', shuma: sizeShuma / count, baseline: sizeJson / count },
    { what: `read + decode + check, ${n} workspaces`, unit: 'ms', shuma: readShuma, baseline: readJson },
  ];
}

export async function snapshotSection(): Promise<Line[]> {
  const lines: Line[] = [
    { heading: '(g) snapshot file: msgpack, checked, atomic and durable  vs  JSON.stringify + writeFileSync / readFileSync + JSON.parse' },
  ];
  const dir = mkdtempSync(path.join(tmpdir(), 'shuma-bench-snapshot-'));
  try {
    for (const count of [1_000, 10_000]) lines.push(...(await measure(dir, count)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return lines;
}
