// shuma's benchmark: `npm run bench`. Every figure is measured in this one run, shuma and its
// baseline side by side, on this machine as it is (other work may share its cores).
// Sections: (a) spawn rate, (b) restart latency, (c) host ↔ worker messages, (d) idle workspaces,
// (e) the actor threads' pool, (f) quota sampling, (g) the snapshot file, (h) restore, (i) inspection overhead,
// (j) pipeline throughput against bash, (k) the CLI's `shuma ps` against `pm2 jlist`.
import { availableParallelism, loadavg } from 'node:os';
import { createRuntime, type Runtime } from '../src/index.js';
import { channelSection } from './channel.js';
import { cliPsSection } from './cli-ps.js';
import { assertGcExposed, liveChildren, printTable, progress, type Line } from './measure.js';
import { poolChoiceSection } from './pool-choice.js';
import { restartSection } from './restart.js';
import { samplingSection } from './sampling.js';
import { inspectionSection } from './inspection.js';
import { pipelineThroughputSection } from './pipeline-throughput.js';
import { restoreSection } from './restore.js';
import { snapshotSection } from './snapshot.js';
import { spawnSection } from './spawn.js';
import { workspacesSection } from './workspaces.js';

const RESTARTS = 300;
const IDLE_WORKSPACES = 10_000;
const CREATE_BATCH = 100;

/** (a) and (b) share one runtime, created once: its threads are part of the RSS that fork() copies. */
async function processSections(): Promise<Line[]> {
  const rt: Runtime = await createRuntime();
  try {
    return [...(await spawnSection(rt)), ...(await restartSection(rt, RESTARTS)), ...(await samplingSection(rt))];
  } finally {
    await rt.shutdown({ graceMs: 0 });
  }
}

async function main(): Promise<void> {
  assertGcExposed();
  const started = Date.now();
  const lines: Line[] = [
    ...(await processSections()),
    ...(await channelSection()),
    ...(await workspacesSection(IDLE_WORKSPACES, CREATE_BATCH)),
    ...(await poolChoiceSection()),
    ...(await snapshotSection()),
    ...(await restoreSection()),
    ...(await inspectionSection()),
    ...(await pipelineThroughputSection()),
    ...(await cliPsSection()),
  ];
  const leftovers = liveChildren();
  console.log(
    `shuma benchmark — node ${process.version}, ${availableParallelism()} cores, ` +
      `load average ${loadavg().map((load) => load.toFixed(2)).join(' ')}, ` +
      `${((Date.now() - started) / 1000).toFixed(0)} s; ratio = shuma / baseline\n`,
  );
  printTable(lines);
  console.log(`\nchild processes left behind: ${leftovers.length === 0 ? 'none' : leftovers.join(', ')}`);
  if (leftovers.length > 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  progress(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});
