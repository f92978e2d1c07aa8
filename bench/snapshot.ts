// Issue 5's figures: the snapshot file with 1,000 and 10,000 workspaces — write time (msgpack
// records, structure check, temp file, fsync, rename, fsync of the directory), size, and read time
// (size cap, structure check, decode, envelope check), wall and CPU — against JSON.stringify of
// the same data written the same way (its own temp file, O_EXCL, fsync, rename over the last,
// fsync of the directory: bench/json-durable-write.ts) and readFileSync + JSON.parse. A row
// against the bare JSON.stringify + writeFileSync (no fsync, no rename) is kept, as issue 17
// first measured it. The runtime writes through a SnapshotEncoder that keeps the bytes of each
// workspace whose change count did not move: a write after changes (1 % of the workspaces
// changed since the last, as the runtime writes them: every record made anew, each with its
// workspace's count) and a cold write (nothing kept: every workspace encoded) are both shown.
// Both sides run in this process, their code warmed by the runs before: a cold write is one
// whose every record is packed, not one in a process that never packed.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { SnapshotData } from '../src/host/persistence/snapshot-data.js';
import { SnapshotEncoder, counted } from '../src/host/persistence/snapshot-encoder.js';
import { snapshotData } from './snapshot-sample.js';
import { firstWrites } from './snapshot-first-write.js';
import { SNAPSHOT_FILE, readSnapshotFile, writeSnapshotData } from '../src/host/persistence/snapshot-file.js';
import { now, progress, quantile, type Line } from './measure.js';
import { writeJsonDurably } from './json-durable-write.js';

const RUNS = 7;
/** Fresh processes per side for the first write (a process's first write is one sample). */
const FIRST_WRITES = 5;
const KiB = 1024;

/** Share of the workspaces changed between two writes, for the write "after changes". */
const CHANGED = 0.01;

/** Each workspace's change count, as the registry keeps it. */
const changes = new Map<string, number>();

/**
 * A new record for `CHANGED` of the workspaces, with a new actor (as a state change brings) and
 * its count bumped; the others new records around the same actor at the same count, as the
 * runtime collects them at every write.
 */
function changeSome(data: SnapshotData, round: number): void {
  const every = Math.round(1 / CHANGED);
  data.workspaces = data.workspaces.map((record, index) => {
    const changed = (index + round) % every === 0;
    const count = (changes.get(record.id) ?? 0) + (changed ? 1 : 0);
    changes.set(record.id, count);
    return counted(changed ? { ...record, actor: structuredClone(record.actor) } : { ...record }, count);
  });
}

interface Timing {
  /** Median wall time, ms. */
  ms: number;
  /** Median CPU of every thread of the process (main, libuv's pool, the collector's), ms. */
  cpuMs: number;
}

const cpuMsSince = (start: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
};

/**
 * Medians of `RUNS` timings of `op`: fsync times vary from run to run, and the machine is
 * shared (CPU time is what a loaded machine disturbs least). `prepare` is not timed.
 */
async function timed(op: () => Promise<unknown> | unknown, prepare?: (run: number) => void): Promise<Timing> {
  const times: number[] = [];
  const cpu: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    prepare?.(run);
    // A collection owed by the previous operation must not land in this one's time.
    globalThis.gc?.();
    const cpuStart = process.cpuUsage();
    const start = now();
    await op();
    times.push(now() - start);
    cpu.push(cpuMsSince(cpuStart));
  }
  return { ms: quantile(times, 0.5), cpuMs: quantile(cpu, 0.5) };
}

async function measure(dir: string, count: number): Promise<Line[]> {
  progress(`snapshot: ${count} workspaces`);
  const data = snapshotData(count);
  const jsonFile = path.join(dir, 'baseline.json');
  const encoder = new SnapshotEncoder();
  await writeSnapshotData(dir, data, encoder);
  const writeShuma = await timed(() => writeSnapshotData(dir, data, encoder), (run) => changeSome(data, run));
  const writeCold = await timed(() => writeSnapshotData(dir, data, new SnapshotEncoder()));
  const writeJson = await timed(() => writeJsonDurably(jsonFile, data));
  const writeJsonBare = await timed(() => writeFileSync(jsonFile, JSON.stringify(data)));
  // Encoding and checking alone: the rest of a write is the disk.
  const encodeShuma = await timed(() => encoder.encode(Date.now(), data), (run) => changeSome(data, run));
  const encodeCold = await timed(() => new SnapshotEncoder().encode(Date.now(), data));
  const encodeJson = await timed(() => JSON.stringify(data));
  const readShuma = await timed(async () => {
    const read = await readSnapshotFile(dir);
    if (read.status !== 'ok') throw new Error(`the snapshot did not read back: ${JSON.stringify(read)}`);
  });
  const readJson = await timed(() => JSON.parse(readFileSync(jsonFile, 'utf8')));
  const first = firstWrites(dir, count, FIRST_WRITES);
  const sizeShuma = statSync(path.join(dir, SNAPSHOT_FILE)).size;
  const sizeJson = statSync(jsonFile).size;
  const n = count.toLocaleString('en-US');
  return [
    { what: `write, ${n} workspaces, ${CHANGED * 100} % changed (both: temp file, fsync, rename, fsync of the dir)`, unit: 'ms', shuma: writeShuma.ms, baseline: writeJson.ms },
    { what: `  CPU, all threads`, unit: 'ms', shuma: writeShuma.cpuMs, baseline: writeJson.cpuMs },
    { what: `  cold: every workspace encoded`, unit: 'ms', shuma: writeCold.ms, baseline: writeJson.ms },
    { what: `  cold, CPU, all threads`, unit: 'ms', shuma: writeCold.cpuMs, baseline: writeJson.cpuMs },
    { what: `  cold vs bare JSON.stringify + writeFileSync (no fsync, no rename)`, unit: 'ms', shuma: writeCold.ms, baseline: writeJsonBare.ms },
    { what: `  cold, CPU, vs the bare JSON write`, unit: 'ms', shuma: writeCold.cpuMs, baseline: writeJsonBare.cpuMs },
    { what: `  first write of a fresh process (no code optimized yet), CPU, all threads`, unit: 'ms', shuma: first.shuma, baseline: first.json },
    { what: `  of which encoding (pack + structure check vs JSON.stringify)`, unit: 'ms', shuma: encodeShuma.ms, baseline: encodeJson.ms },
    { what: `  of which encoding, cold`, unit: 'ms', shuma: encodeCold.ms, baseline: encodeJson.ms },
    { what: `size, ${n} workspaces`, unit: 'KiB', shuma: sizeShuma / KiB, baseline: sizeJson / KiB },
    { what: `size per workspace`, unit: 'B', shuma: sizeShuma / count, baseline: sizeJson / count },
    { what: `read + decode + check, ${n} workspaces`, unit: 'ms', shuma: readShuma.ms, baseline: readJson.ms },
    { what: `  CPU, all threads`, unit: 'ms', shuma: readShuma.cpuMs, baseline: readJson.cpuMs },
  ];
}

export async function snapshotSection(): Promise<Line[]> {
  const lines: Line[] = [
    { heading: '(g) snapshot file: msgpack, checked, atomic and durable  vs  JSON.stringify written as atomically and durably / readFileSync + JSON.parse' },
  ];
  const dir = mkdtempSync(path.join(tmpdir(), 'shuma-bench-snapshot-'));
  try {
    for (const count of [1_000, 10_000]) lines.push(...(await measure(dir, count)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return lines;
}
