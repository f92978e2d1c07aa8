// The first snapshot write of a process, against the first JSON.stringify of the same state
// written as durably (json-durable-write.ts): each in a fresh Node process that built the same state and wrote nothing yet, so neither
// side's code is optimized (a runtime's first write after a restore is such a write). The rows of
// snapshot.ts are measured in one process whose code earlier runs warmed; these are not.
// Run as a child: `node snapshot-first-write.js <dir> <count> <shuma|json>` prints the CPU ms of
// every thread of the process spent in that one write.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SnapshotEncoder } from '../src/host/persistence/snapshot-encoder.js';
import { writeSnapshotData } from '../src/host/persistence/snapshot-file.js';
import { quantile } from './measure.js';
import { snapshotData } from './snapshot-sample.js';
import { writeJsonDurably } from './json-durable-write.js';

const self = fileURLToPath(import.meta.url);

/** Median CPU ms of the first write of `count` workspaces, shuma's and JSON's, `rounds` fresh processes each, in turn. */
export function firstWrites(dir: string, count: number, rounds: number): { shuma: number; json: number } {
  const shuma: number[] = [];
  const json: number[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const [side, into] of [['shuma', shuma], ['json', json]] as const) {
      const child = spawnSync(process.execPath, ['--expose-gc', self, dir, String(count), side], { encoding: 'utf8' });
      if (child.status !== 0) throw new Error(`the first-write child (${side}) failed: ${child.stderr}`);
      into.push(Number(child.stdout.trim()));
    }
  }
  return { shuma: quantile(shuma, 0.5), json: quantile(json, 0.5) };
}

async function child(dir: string, count: number, side: string): Promise<void> {
  const data = snapshotData(count);
  globalThis.gc?.();
  const start = process.cpuUsage();
  if (side === 'shuma') await writeSnapshotData(dir, data, new SnapshotEncoder());
  else await writeJsonDurably(path.join(dir, 'first.json'), data);
  const used = process.cpuUsage(start);
  process.stdout.write(`${(used.user + used.system) / 1000}\n`);
}

if (process.argv[1] === self) {
  const [dir, count, side] = process.argv.slice(2);
  await child(dir!, Number(count), side!);
}
