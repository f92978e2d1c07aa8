// shuma's benchmark: `npm run bench`. Every figure is measured in this one run, shuma and its
// baseline side by side, on this machine as it is (other work may share its cores).
// Sections: (a) spawn rate, (b) restart latency (`restart-steady`: after a warm-up), (c) host ↔ worker messages, (d) idle workspaces,
// (e) the actor threads' pool, (f) quota sampling, (g) the snapshot file, (h) restore, (i) inspection overhead,
// (j) pipeline throughput against bash, (k) spawn paths (C loop, native addon, child_process),
// (l) the CLI's `shuma ps` against `pm2 jlist`, (m) a restart beside 200 live commands against one alone,
// (n) spawns of commands that die with the runtime against ones that outlive it,
// (o) Slurm placement against srun/salloc by hand, (p) what one-shot jobs leave in memory,
// (q) what workspaces that come and go leave in memory.
// `npm run bench -- spawn restart` runs only the sections named (by the words below).
import { availableParallelism, loadavg } from 'node:os';
import { createRuntime, type Runtime } from '../src/index.js';
import { channelSection } from './channel.js';
import { cliPsSection } from './cli-ps.js';
import { assertGcExposed, liveChildren, printTable, progress, type Line } from './measure.js';
import { poolChoiceSection } from './pool-choice.js';
import { restartSection } from './restart.js';
import { crowdedRestartSection } from './crowded-restart.js';
import { samplingSection } from './sampling.js';
import { inspectionSection } from './inspection.js';
import { pipelineThroughputSection } from './pipeline-throughput.js';
import { restoreSection } from './restore.js';
import { snapshotSection } from './snapshot.js';
import { spawnSection } from './spawn.js';
import { spawnPathsSection } from './spawn-paths.js';
import { slurmSection } from './slurm.js';
import { workspacesSection } from './workspaces.js';
import { dieWithRuntimeSection } from './die-with-runtime.js';
import { oneShotJobsSection } from './one-shot-jobs.js';
import { workspaceChurnSection } from './workspace-churn.js';

const RESTARTS = 300;
const FIRST_ROWS = { first: true, steady: false };
const STEADY_ROWS = { first: false, steady: true };
const IDLE_WORKSPACES = 10_000;
const CREATE_BATCH = 100;

const only = new Set(process.argv.slice(2));
const wanted = (name: string) => only.size === 0 || only.has(name);

/** A runtime on child_process, whatever the addon: the spawner is chosen at construction. */
async function nodeSpawnerRuntime(): Promise<Runtime> {
  const before = process.env.SHUMA_SPAWNER;
  process.env.SHUMA_SPAWNER = 'node';
  try {
    return await createRuntime();
  } finally {
    if (before === undefined) delete process.env.SHUMA_SPAWNER;
    else process.env.SHUMA_SPAWNER = before;
  }
}

/** (a), (b), (f) and (k) share the runtimes, created once: their threads are part of the RSS that fork() copies. */
async function processSections(): Promise<Line[]> {
  const rt: Runtime = await createRuntime();
  const rtNode = await nodeSpawnerRuntime();
  try {
    return [
      ...(wanted('spawn') ? await spawnSection(rt) : []),
      ...(wanted('restart') ? [...(await restartSection(rt, RESTARTS, FIRST_ROWS)), ...(await restartSection(rtNode, RESTARTS, FIRST_ROWS))] : []),
      // After the warm-up (the native spawner's: issue 17's row), a section of its own so that each fits in one quiet run.
      ...(wanted('restart-steady') ? await restartSection(rt, RESTARTS, STEADY_ROWS) : []),
      // The native spawner's alone: one quiet run's worth (bench (b)'s A/B).
      ...(only.has('restart-native') ? await restartSection(rt, RESTARTS, FIRST_ROWS) : []),
      ...(wanted('crowded') ? await crowdedRestartSection(rt) : []),
      ...(wanted('sampling') ? await samplingSection(rt) : []),
      ...(wanted('spawn-paths') ? await spawnPathsSection({ native: rt, node: rtNode }) : []),
    ];
  } finally {
    await rt.shutdown({ graceMs: 0 });
    await rtNode.shutdown({ graceMs: 0 });
  }
}

async function main(): Promise<void> {
  assertGcExposed();
  const started = Date.now();
  const lines: Line[] = [
    ...(await processSections()),
    ...(wanted('channel') ? await channelSection() : []),
    ...(wanted('workspaces') ? await workspacesSection(IDLE_WORKSPACES, CREATE_BATCH) : []),
    ...(wanted('pool') ? await poolChoiceSection() : []),
    ...(wanted('snapshot') ? await snapshotSection() : []),
    ...(wanted('restore') ? await restoreSection() : []),
    ...(wanted('inspection') ? await inspectionSection() : []),
    ...(wanted('pipeline') ? await pipelineThroughputSection() : []),
    ...(wanted('cli') ? await cliPsSection() : []),
    ...(wanted('die') ? await dieWithRuntimeSection() : []),
    ...(wanted('slurm') ? await slurmSection() : []),
    ...(wanted('jobs') ? await oneShotJobsSection() : []),
    ...(wanted('churn') ? await workspaceChurnSection() : []),
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
