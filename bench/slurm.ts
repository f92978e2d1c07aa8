// (o) Slurm placement against srun/salloc by hand, in the same run on the same throwaway cluster
// (scripts/slurm-test-cluster.sh, two emulated nodes): create-to-running of a workspace, ws.run
// of one command on a node until it ran (srun true), a restart cycle (srun false relaunched as
// soon as it ends), and a 2-node pipeline's throughput (srun | srun). Medians.
//
// Each side is run in turn with its baselines, the order rotating from one round to the next, so
// that a change of the machine's load (2 cores shared with other work) falls on every side alike.
//
// Create-to-running has four baselines: `salloc --no-shell` alone (a job id, its nodes unknown),
// started by child_process as a Node program would, and started as shuma starts its salloc (the
// addon's spawner: no fork of this process); the same followed by the squeue a user needs to
// learn its nodes (what a workspace gives: ws.placement.nodes); and salloc running the
// node-reporting command shuma uses (report-command.ts), read up to its report as shuma reads it,
// which leaves shuma's own part as the difference. Each by-hand salloc asks with shuma's own
// options, and every side ends its job as ws.stop() does (scancel, then squeue until the job is
// gone): without that the side after a by-hand one ran beside a job still being torn down.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createRuntime, type Runtime } from '../src/index.js';
import { sallocArgs } from '../src/host/placement/slurm/allocation.js';
import { cancelJob } from '../src/host/placement/slurm/job-control.js';
import { sallocSpawnerOf, startSalloc } from '../src/host/placement/slurm/salloc-process.js';
import { createSpawner } from '../src/host/spawn/choose-spawner.js';
import { reportCommand } from '../src/host/placement/slurm/report-command.js';
import { programReadsDevNull } from '../src/host/placement/slurm/step-task.js';
import { now, progress, quantile, type Line } from './measure.js';

const run = promisify(execFile);
const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/slurm-test-cluster.sh');
const ROUNDS = 20;
const CREATE_ROUNDS = 60;
/** Runs of a failing command per block (the first and its restarts), and blocks. */
const RESTARTS = 10;
const RESTART_BLOCKS = 6;
const PIPE_BYTES = 128 * 2 ** 20;
const PIPE_ROUNDS = 4;


/** Runs each of `sides` once, starting with a different one each round. */
async function inTurn(round: number, sides: readonly (() => Promise<void>)[]): Promise<void> {
  for (let k = 0; k < sides.length; k++) await sides[(round + k) % sides.length]!();
}

/**
 * The salloc line shuma runs (allocation.ts: its command reports the job and its nodes, then ends
 * salloc so that it keeps the job), read up to the report as shuma reads it; then until it ended.
 */
function sallocReporting(env: NodeJS.ProcessEnv, name: string): Promise<{ reportedMs: number; jobId: string; ended: Promise<void> }> {
  const t = now();
  return new Promise((resolve, reject) => {
    const child = spawn('salloc', sallocArgs({ name, nodes: 1, waitMs: 60_000 }), { env, stdio: ['pipe', 'ignore', 'pipe'] });
    const ended = new Promise<void>((settle) => child.once('close', () => settle()));
    let said = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      said += chunk;
      const report = /^shuma-allocation (\d+) \S+\n/m.exec(said);
      if (report) resolve({ reportedMs: now() - t, jobId: report[1]!, ended });
    });
    void ended.then(() => reject(new Error(`salloc with the report by hand: ${said}`)));
  });
}

/** Bare salloc as a user runs it for a job: the same options as shuma's salloc line, --no-shell instead of its command. */
const bareSalloc = (name: string) => ['--no-shell', ...sallocArgs({ name, nodes: 1, waitMs: 60_000 }).slice(0, -reportCommand().length)];

/** The same srun options shuma's steps use (step.ts), for a fair baseline. */
const srunBase = (jobId: string, node: string) => [`--jobid=${jobId}`, '--overlap', `--nodelist=${node}`, '--nodes=1', '--ntasks=1', '--quiet'];

/**
 * srun as shuma starts a step without stdin: srun's stdin a pipe held open until it ended (so it
 * sends no stdin EOF), the program behind the shell that gives it /dev/null on the node
 * (step-task.ts: without that a fast step's output can be cut). What is left between this and
 * shuma is shuma's own part.
 */
function srunAsShuma(env: NodeJS.ProcessEnv, jobId: string, node: string, program: string): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn('srun', programReadsDevNull([...srunBase(jobId, node), program]), { env, stdio: ['pipe', 'ignore', 'ignore'] });
    child.once('close', () => {
      child.stdin.destroy();
      resolve();
    });
  });
}

export async function slurmSection(): Promise<Line[]> {
  if (!existsSync('/usr/sbin/slurmctld') || !existsSync('/usr/bin/srun')) {
    progress('(o) Slurm: not installed here (apt-get install slurmctld slurmd slurm-client munge) — skipped');
    return [{ heading: '(o) Slurm placement — skipped: Slurm is not installed' }];
  }
  const { stdout } = await run(SCRIPT, ['up']);
  const root = stdout.split('\n')[0]!.trim();
  const conf = `${root}/slurm.conf`;
  const env = { ...process.env, SLURM_CONF: conf };
  const rt = await createRuntime({ workers: 1, statsIntervalMs: 0, slurm: { conf } });
  const loadAtStart = loadavg()[0]!;
  try {
    progress('(o) Slurm: create-to-running');
    const cluster = { conf };
    const addon = await sallocSpawnerOf(createSpawner(undefined).spawner);
    const create: number[] = [];
    const salloc: number[] = [];
    const sallocAddon: number[] = [];
    const sallocNodes: number[] = [];
    const sallocReport: number[] = [];
    // Every side ends its job as ws.stop() does (scancel, then squeue until the job is gone) and
    // its salloc: the next side never runs beside a job still being torn down.
    const granted = (said: string, who: string) => {
      const jobId = /Granted job allocation (\d+)/.exec(said)?.[1];
      if (!jobId) throw new Error(`${who}: ${said}`);
      return jobId;
    };
    for (let i = 0; i < CREATE_ROUNDS; i++) {
      await inTurn(i, [
        async () => {
          const t = now();
          const ws = await rt.createWorkspace({ label: `bench-${i}`, placement: { kind: 'slurm', nodes: 1 } });
          create.push(now() - t);
          await ws.stop({ graceMs: 0 });
        },
        async () => {
          const t = now();
          const answer = await run('salloc', bareSalloc(`bench-bare-${i}`), { env });
          salloc.push(now() - t);
          await cancelJob(cluster, granted(answer.stderr, 'bare salloc'));
        },
        ...(addon
          ? [
              async () => {
                const t = now();
                const started = await startSalloc(cluster, bareSalloc(`bench-addon-${i}`), { timeoutMs: 60_000, onStderr: () => undefined, spawner: addon });
                const answer = await started.ended;
                sallocAddon.push(now() - t);
                await cancelJob(cluster, granted(answer.stderr, 'bare salloc by the addon'));
              },
            ]
          : []),
        async () => {
          const t = now();
          const answer = await run('salloc', bareSalloc(`bench-hand-${i}`), { env });
          const jobId = granted(answer.stderr, 'salloc by hand');
          const listed = await run('squeue', ['--noheader', `--jobs=${jobId}`, '--format=%N'], { env });
          sallocNodes.push(now() - t);
          if (listed.stdout.trim() === '') throw new Error(`squeue by hand listed no node for job ${jobId}`);
          await cancelJob(cluster, jobId);
        },
        async () => {
          const reported = await sallocReporting(env, `bench-report-${i}`);
          sallocReport.push(reported.reportedMs);
          await reported.ended;
          await cancelJob(cluster, reported.jobId);
        },
      ]);
    }

    progress('(o) Slurm: ws.run → ran on a node, restart cycle');
    const ws = await rt.createWorkspace({ label: 'bench-steps', placement: { kind: 'slurm', nodes: 2 } });
    const jobId = ws.placement.kind === 'slurm' ? ws.placement.jobId : '';
    const runMs: number[] = [];
    const srunMs: number[] = [];
    const srunShumaMs: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      await inTurn(i, [
        async () => {
          const t = now();
          const c = await ws.run({ exec: 'true', node: 'n2' });
          await c.exited;
          runMs.push(now() - t);
        },
        async () => {
          const t = now();
          await run('srun', [...srunBase(jobId, 'n2'), 'true'], { env });
          srunMs.push(now() - t);
        },
        async () => {
          const t = now();
          await srunAsShuma(env, jobId, 'n2', 'true');
          srunShumaMs.push(now() - t);
        },
      ]);
    }
    // Per block: RESTARTS runs of a failing command, each relaunched as soon as it ended.
    const restartBlocks: number[] = [];
    const srunLoopBlocks: number[] = [];
    const srunShumaLoopBlocks: number[] = [];
    for (let block = 0; block < RESTART_BLOCKS; block++) {
      await inTurn(block, [
        async () => {
          const label = `fail-${block}`;
          const t = now();
          await ws.run({ label, exec: 'false', node: 'n1', restart: { onFailure: true, backoffMs: 0, maxBackoffMs: 0, maxRestarts: RESTARTS - 1 } });
          // commands() keeps only the newest ended runs of a command: the last run is the one with every restart.
          for (;;) {
            const runs = await ws.commands();
            if (runs.some((r) => r.label === label && r.restarts === RESTARTS - 1 && !r.alive)) break;
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
          restartBlocks.push((now() - t) / RESTARTS);
        },
        async () => {
          const t = now();
          for (let i = 0; i < RESTARTS; i++) await run('srun', [...srunBase(jobId, 'n1'), 'false'], { env }).catch(() => undefined);
          srunLoopBlocks.push((now() - t) / RESTARTS);
        },
        async () => {
          const t = now();
          for (let i = 0; i < RESTARTS; i++) await srunAsShuma(env, jobId, 'n1', 'false');
          srunShumaLoopBlocks.push((now() - t) / RESTARTS);
        },
      ]);
    }

    progress('(o) Slurm: 2-node pipeline');
    const pipeMs: number[] = [];
    const bashMs: number[] = [];
    const line = `srun ${srunBase(jobId, 'n1').join(' ')} head -c ${PIPE_BYTES} /dev/zero | srun ${srunBase(jobId, 'n2').join(' ')} sh -c 'cat > /dev/null'`;
    for (let round = 0; round < PIPE_ROUNDS; round++) {
      // ABBA…: neither side always runs first, on a machine that warms up or cools down.
      await inTurn(round, [
        async () => {
          const t = now();
          const p = await rt.runPipeline({
            label: 'bench-pipe',
            workspace: ws.id,
            nodes: [
              { label: 'gen', exec: 'head', argv: ['-c', String(PIPE_BYTES), '/dev/zero'], node: 'n1' },
              { label: 'sink', exec: 'sh', argv: ['-c', 'cat > /dev/null'], node: 'n2' },
            ],
            edges: [{ from: 'gen', to: 'sink' }],
          });
          const done = await p.done;
          pipeMs.push(now() - t);
          if (!done.ok) throw new Error(`the bench pipeline failed: ${JSON.stringify(done.exits)}`);
        },
        async () => {
          const t = now();
          await new Promise<void>((resolve, reject) =>
            spawn('bash', ['-c', line], { env, stdio: 'ignore' }).once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bash pipeline: ${code}`)))),
          );
          bashMs.push(now() - t);
        },
      ]);
    }
    await ws.stop({ graceMs: 0 });

    const median = (values: number[]) => quantile(values, 0.5);
    const mibPerS = (ms: number) => PIPE_BYTES / 2 ** 20 / (ms / 1000);
    const load = `load average ${loadAtStart.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}`;
    return [
      { heading: `(o) Slurm placement — shuma against srun/salloc by hand, same cluster (2 emulated nodes), sides in turn, medians of ${ROUNDS} (create: ${CREATE_ROUNDS}; restart: ${RESTART_BLOCKS} blocks); ${load}` },
      { what: 'create-to-running of a 1-node workspace, its nodes known (baseline: salloc --no-shell, then squeue for its nodes)', unit: 'ms', shuma: median(create), baseline: median(sallocNodes) },
      { what: 'the same (baseline: bare salloc --no-shell: a job id, its nodes unknown)', unit: 'ms', shuma: median(create), baseline: median(salloc) },
      ...(addon ? [{ what: 'the same (baseline: bare salloc --no-shell started as shuma starts salloc: the addon\'s spawner)', unit: 'ms', shuma: median(create), baseline: median(sallocAddon) }] : []),
      { what: "the same (baseline: salloc running shuma's node-reporting command, read up to its report)", unit: 'ms', shuma: median(create), baseline: median(sallocReport) },
      { what: 'ws.run(true) on n2 → exited (baseline: bare srun --overlap true)', unit: 'ms', shuma: median(runMs), baseline: median(srunMs) },
      { what: "the same (baseline: srun as shuma starts it: its stdin held open, the program's /dev/null on the node)", unit: 'ms', shuma: median(runMs), baseline: median(srunShumaMs) },
      { what: `restart cycle of a failing command, ${RESTARTS} runs a block, backoff 0 (baseline: bare srun false relaunched in a loop)`, unit: 'ms/run', shuma: median(restartBlocks), baseline: median(srunLoopBlocks) },
      { what: 'the same (baseline: srun as shuma starts it, relaunched in a loop)', unit: 'ms/run', shuma: median(restartBlocks), baseline: median(srunShumaLoopBlocks) },
      { what: `2-node pipeline n1 → n2, ${PIPE_BYTES / 2 ** 20} MiB, median of ${PIPE_ROUNDS} (baseline: srun | srun in bash)`, unit: 'MiB/s', shuma: mibPerS(median(pipeMs)), baseline: mibPerS(median(bashMs)) },
    ];
  } finally {
    await rt.shutdown({ graceMs: 0 });
    await run(SCRIPT, ['down', root]);
  }
}
