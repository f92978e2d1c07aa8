// (o) Slurm placement against srun/salloc by hand, in the same run on the same throwaway cluster
// (scripts/slurm-test-cluster.sh, two emulated nodes). Every side is started by the same spawner
// as shuma's own Slurm programs (the addon's: no fork of this process) unless said otherwise, with
// the same options as shuma's, and every side ends what it made as shuma does (a job: scancel,
// then squeue until it is gone), so that the next side never runs beside a job being torn down.
//
// Rows, and what each side does:
// - create-to-running of a 1-node workspace (rt.createWorkspace until it resolves, its job and
//   nodes known). The fair baseline is what a user does by hand to get the same: an allocation
//   AND its job id and node names (docs/placement.md § "The fair baseline of a create"): salloc
//   with shuma's options running a shell that prints $SLURM_JOB_ID and $SLURM_JOB_NODELIST, read
//   up to that line. Beside it: salloc --no-shell then `squeue` for its nodes (the other way by
//   hand); salloc running shuma's own node-reporting helper (report-command.ts), read up to its
//   report (salloc's part of shuma's way: the difference is shuma's own part); and bare
//   `salloc --no-shell` (started by the addon, and by child_process as a Node program would), which
//   gives no node names. Also the CPU time of this process (all its threads) per create and per
//   bare salloc.
// - ws.run(true) on a node until its exit is seen, against srun with shuma's step options, stdin
//   /dev/null, to its exit; and against srun as shuma starts a step without stdin (stdin a pipe
//   held open, the program behind the shell that gives it /dev/null on the node, step-task.ts).
//   Also shuma's own part of it: ws.run called → srun asked, plus the exit told → exited.
// - a restart cycle: a failing command with backoff 0 and maxRestarts (ms per run, from ws.run to
//   the command's gaveUp), against `srun false` relaunched as soon as it ended, both ways above;
//   and shuma's own part of a cycle: a run's exit told by the step spawner → the next srun asked.
// - a 2-node pipeline's throughput (head -c N /dev/zero on n1 → cat on n2) against
//   `srun … | srun …` in bash.
//
// The sides of a row run in turn within a round, the order rotating from one round to the next,
// so that a change of the machine's load (2 cores shared with other work) falls on every side
// alike. Each row gives the medians of each side (ratio: of the medians) and, per round, the
// ratio of the two sides measured side by side: its median with a 95% confidence interval (order
// statistics: distribution-free) and quartiles, so that one run's ratio says how sure it is.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createRuntime, type Runtime } from '../src/index.js';
import { coreOf } from '../src/host/runtime.js';
import { sallocArgs } from '../src/host/placement/slurm/allocation.js';
import { cancelJob } from '../src/host/placement/slurm/job-control.js';
import { sallocSpawnerOf, startSalloc, type SallocSpawner } from '../src/host/placement/slurm/salloc-process.js';
import { slurmEnv, type SlurmCluster } from '../src/host/placement/slurm/slurm-cli.js';
import { srunArgs } from '../src/host/placement/slurm/step.js';
import { createSpawner } from '../src/host/spawn/choose-spawner.js';
import { resolveExecutable } from '../src/host/spawn/spawn-check.js';
import type { SpawnedProcess, Spawner } from '../src/host/spawn/spawner.js';
import { reportCommand, reportCommandOf } from '../src/host/placement/slurm/report-command.js';
import { programReadsDevNull } from '../src/host/placement/slurm/step-task.js';
import { now, progress, quantile, type Line } from './measure.js';

const run = promisify(execFile);
const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/slurm-test-cluster.sh');
const CREATE_ROUNDS = 80;
const RUN_ROUNDS = 60;
/** Runs of a failing command per block (the first and its restarts), and blocks. */
const RESTARTS = 5;
const RESTART_BLOCKS = 16;
const PIPE_BYTES = 48 * 2 ** 20;
const PIPE_ROUNDS = 10;

/** Runs each of `sides` once, starting with a different one each round. */
async function inTurn(round: number, sides: readonly (() => Promise<void>)[]): Promise<void> {
  for (let k = 0; k < sides.length; k++) await sides[(round + k) % sides.length]!();
}

/**
 * The ratio shuma/baseline of each round's two figures (taken side by side): median, its 95%
 * confidence interval from order statistics (no assumption on the distribution), quartiles.
 */
function paired(shuma: readonly number[], baseline: readonly number[]): string {
  const ratios = shuma.map((value, i) => value / baseline[i]!).filter(Number.isFinite).sort((a, b) => a - b);
  const n = ratios.length;
  if (n === 0) return 'no pairs';
  const half = 0.98 * Math.sqrt(n);
  const low = ratios[Math.max(0, Math.floor(n / 2 - half) - 1)]!;
  const high = ratios[Math.min(n - 1, Math.ceil(n / 2 + half))]!;
  const f = (x: number) => x.toFixed(2);
  return `per round: median ${f(quantile(ratios, 0.5))}×, 95% CI ${f(low)}-${f(high)}, quartiles ${f(quantile(ratios, 0.25))}-${f(quantile(ratios, 0.75))}, n=${n}`;
}

/**
 * Both sides' quartiles. Under load each side's times bunch about 4 ms apart (peaks near 5, 8,
 * 12, 16, 20 ms for a create and for salloc by hand alike; the kernel ticks at 250 Hz), so the two
 * medians can fall in different bunches while the distributions coincide: the quartiles show it,
 * the ratio of the medians alone does not (docs/placement.md, Session s27).
 */
function quartiles(shuma: readonly number[], baseline: readonly number[]): string {
  const q = (values: readonly number[]) => `${quantile(values, 0.25).toFixed(1)}/${quantile(values, 0.5).toFixed(1)}/${quantile(values, 0.75).toFixed(1)}`;
  return `p25/p50/p75 ${q(shuma)} ms, by hand ${q(baseline)} ms`;
}

/** Until salloc's command reported the job (allocation.ts reads the same line). */
const REPORTED = /^shuma-allocation (\d+) \S+\n/m;

/**
 * A program started by `spawner` (as shuma starts its own) and read to its end: its exit and
 * the end of its output. `holdStdin`: its stdin a pipe held open until it ended, as shuma's
 * steps without stdin have it (step-spawner.ts).
 */
async function toEnd(spawner: Spawner, file: string, args: readonly string[], env: Readonly<Record<string, string>>, holdStdin = false): Promise<void> {
  const child: SpawnedProcess = await spawner.spawn({ file, argv0: path.basename(file), args, env, cwd: process.cwd(), ...(holdStdin ? { stdio: { stdin: 'pipe' as const } } : {}) });
  child.stdout?.resume();
  child.stderr?.resume();
  child.stdin?.on('error', () => undefined);
  await Promise.all([new Promise<void>((resolve) => child.onExit(() => resolve())), new Promise<void>((resolve) => child.onOutputEnd(resolve))]);
  child.stdin?.destroy();
}

/** The step spawner of the runtime's Slurm placement, tapped: when each srun was asked, and when each run's exit was told. */
function tapSteps(rt: Runtime): { asked: number[]; told: number[]; untap: () => void } {
  const host = (coreOf(rt).placements.get('slurm') as unknown as { host: { deps: { spawner: Spawner } } }).host;
  const spawner = host.deps.spawner;
  const asked: number[] = [];
  const told: number[] = [];
  host.deps.spawner = {
    name: spawner.name,
    appliesLimits: spawner.appliesLimits,
    ...(spawner.actsAhead !== undefined ? { actsAhead: spawner.actsAhead } : {}),
    spawn: async (order) => {
      asked.push(now());
      const child = await spawner.spawn(order);
      return { ...child, onExit: (listener) => child.onExit((...exit) => (told.push(now()), listener(...exit))) };
    },
  };
  return { asked, told, untap: () => (host.deps.spawner = spawner) };
}

/** The command handle's state, once it gave up (its last restart failed). */
function gaveUp(c: { subscribe(observer: (s: { value: unknown }) => void): () => void }): Promise<void> {
  return new Promise((resolve) => {
    const unsubscribe = c.subscribe((snapshot) => {
      const state = typeof snapshot.value === 'string' ? snapshot.value : Object.keys(snapshot.value as object)[0];
      if (state === 'gaveUp') {
        unsubscribe();
        resolve();
      }
    });
  });
}

export async function slurmSection(): Promise<Line[]> {
  if (!existsSync('/usr/sbin/slurmctld') || !existsSync('/usr/bin/srun')) {
    progress('(o) Slurm: not installed here (apt-get install slurmctld slurmd slurm-client munge) — skipped');
    return [{ heading: '(o) Slurm placement — skipped: Slurm is not installed' }];
  }
  const addon = await sallocSpawnerOf(createSpawner(undefined).spawner);
  if (!addon) {
    progress('(o) Slurm: needs the native addon (shuma starts salloc and srun with it) — skipped');
    return [{ heading: "(o) Slurm placement — skipped: the native addon is not built (shuma's Slurm programs are started by it)" }];
  }
  const { stdout } = await run(SCRIPT, ['up']);
  const root = stdout.split('\n')[0]!.trim();
  const conf = `${root}/slurm.conf`;
  const cluster: SlurmCluster = { conf };
  const env = slurmEnv(cluster);
  const rt = await createRuntime({ workers: 1, statsIntervalMs: 0, slurm: { conf } });
  const loadAtStart = loadavg()[0]!;
  try {
    return [
      { heading: `(o) Slurm placement — shuma against salloc/srun by hand, same cluster (2 emulated nodes), sides in turn; load average ${loadAtStart.toFixed(1)} at the start` },
      ...(await createRows(rt, cluster, addon, env)),
      // SHUMA_BENCH_SLURM=create: the create rows only (an A/B of the create path in short quiet runs).
      ...(process.env.SHUMA_BENCH_SLURM === 'create' ? [] : await stepRows(rt, addon.spawner, env)),
      { heading: `(o) end: load average ${loadavg()[0]!.toFixed(1)}` },
    ];
  } finally {
    await rt.shutdown({ graceMs: 0 });
    await run(SCRIPT, ['down', root]);
  }
}

async function createRows(rt: Runtime, cluster: SlurmCluster, addon: SallocSpawner, env: Readonly<Record<string, string>>): Promise<Line[]> {
  progress('(o) Slurm: create-to-running');
  const create: number[] = [];
  const createCpu: number[] = [];
  const bare: number[] = [];
  const bareCpu: number[] = [];
  const bareNode: number[] = [];
  const bareNodes: number[] = [];
  const reported: number[] = [];
  const byShell: number[] = [];
  const granted = (said: string, who: string) => {
    const jobId = /Granted job allocation (\d+)/.exec(said)?.[1];
    if (!jobId) throw new Error(`${who}: ${said}`);
    return jobId;
  };
  /** Bare salloc as a user runs it for a job: shuma's options, --no-shell instead of its command. */
  const bareSalloc = (name: string) => ['--no-shell', ...sallocArgs({ name, nodes: 1, waitMs: 60_000 }).slice(0, -reportCommand().length)];
  const quiet = { timeoutMs: 60_000, onStderr: () => undefined, spawner: addon };
  /** salloc with shuma's options running `command`, read up to the line that says the job and its nodes. */
  const toReport = async (name: string, command: readonly string[], into: number[]) => {
    const t = now();
    let at = 0;
    const salloc = await startSalloc(cluster, [...sallocArgs({ name, nodes: 1, waitMs: 60_000 }).slice(0, -reportCommand().length), ...command], {
      ...quiet,
      onStderr: (said) => {
        if (at === 0 && REPORTED.test(said)) at = now();
      },
    });
    const answer = await salloc.ended;
    if (at === 0) throw new Error(`salloc running ${command[0]}: ${answer.stderr}`);
    into.push(at - t);
    await cancelJob(cluster, granted(answer.stderr, `salloc running ${command[0]}`));
  };
  for (let i = 0; i < CREATE_ROUNDS; i++) {
    await inTurn(i, [
      async () => {
        const cpu = process.cpuUsage();
        const t = now();
        const ws = await rt.createWorkspace({ label: `bench-${i}`, placement: { kind: 'slurm', nodes: 1 } });
        create.push(now() - t);
        const used = process.cpuUsage(cpu);
        createCpu.push((used.user + used.system) / 1000);
        await ws.stop({ graceMs: 0 });
      },
      async () => {
        const cpu = process.cpuUsage();
        const t = now();
        const answer = await (await startSalloc(cluster, bareSalloc(`bench-bare-${i}`), quiet)).ended;
        bare.push(now() - t);
        const used = process.cpuUsage(cpu);
        bareCpu.push((used.user + used.system) / 1000);
        await cancelJob(cluster, granted(answer.stderr, 'bare salloc'));
      },
      async () => {
        const t = now();
        const answer = await run('salloc', bareSalloc(`bench-node-${i}`), { env });
        bareNode.push(now() - t);
        await cancelJob(cluster, granted(answer.stderr, 'bare salloc by child_process'));
      },
      async () => {
        const t = now();
        const answer = await (await startSalloc(cluster, bareSalloc(`bench-hand-${i}`), quiet)).ended;
        const jobId = granted(answer.stderr, 'salloc by hand');
        const listed = await run('squeue', ['--noheader', `--jobs=${jobId}`, '--format=%N'], { env });
        bareNodes.push(now() - t);
        if (listed.stdout.trim() === '') throw new Error(`squeue by hand listed no node for job ${jobId}`);
        await cancelJob(cluster, jobId);
      },
      () => toReport(`bench-report-${i}`, reportCommand(), reported),
      () => toReport(`bench-shell-${i}`, reportCommandOf(null), byShell),
    ]);
  }
  const median = (values: number[]) => quantile(values, 0.5);
  const what = 'create-to-running of a 1-node workspace';
  return [
    { what: `${what}, fair baseline (by hand: salloc with shuma's options running a shell that prints the job's id and nodes, read up to that line: the least that gives what ws.placement gives; median of ${CREATE_ROUNDS}; ${quartiles(create, byShell)}; ${paired(create, byShell)})`, unit: 'ms', shuma: median(create), baseline: median(byShell) },
    { what: `the same (baseline by hand: salloc --no-shell, then squeue for its nodes; ${paired(create, bareNodes)})`, unit: 'ms', shuma: median(create), baseline: median(bareNodes) },
    { what: `the same (baseline: salloc running shuma's own node-reporting helper, read up to its report: salloc's part of shuma's way, the rest is shuma's own; ${paired(create, reported)})`, unit: 'ms', shuma: median(create), baseline: median(reported) },
    { what: `the same (baseline: bare salloc --no-shell, shuma's options, started as shuma starts salloc, to its exit: gives no node names; ${paired(create, bare)})`, unit: 'ms', shuma: median(create), baseline: median(bare) },
    { what: `the same (baseline: bare salloc --no-shell started by child_process; ${paired(create, bareNode)})`, unit: 'ms', shuma: median(create), baseline: median(bareNode) },
    { what: `salloc's cost of saying the nodes: salloc running shuma's helper, to its report (baseline: bare salloc --no-shell, both by the addon; ${paired(reported, bare)})`, unit: 'ms', shuma: median(reported), baseline: median(bare) },
    { what: `the same by hand: salloc running the shell, to its line (baseline: bare salloc --no-shell; ${paired(byShell, bare)})`, unit: 'ms', shuma: median(byShell), baseline: median(bare) },
    { what: `CPU time of this process (all threads) per create (baseline: per bare salloc --no-shell as shuma starts it; ${paired(createCpu, bareCpu)})`, unit: 'ms', shuma: median(createCpu), baseline: median(bareCpu) },
  ];
}

async function stepRows(rt: Runtime, spawner: Spawner, env: Readonly<Record<string, string>>): Promise<Line[]> {
  progress('(o) Slurm: ws.run → exited, restart cycle');
  const srun = await resolveExecutable('srun', '/', process.env.PATH ?? '/usr/bin:/bin');
  const ws = await rt.createWorkspace({ label: 'bench-steps', placement: { kind: 'slurm', nodes: 2 } });
  const jobId = ws.placement.kind === 'slurm' ? ws.placement.jobId : '';
  let step = 0;
  /** shuma's own srun options for a step (step.ts), its program after them. */
  const srunLine = (node: string, program: string) => [...srunArgs({ jobId, node, name: `bench-by-hand-${++step}` }), program];
  const bareSrun = (node: string, program: string) => toEnd(spawner, srun, srunLine(node, program), env);
  const srunAsShuma = (node: string, program: string) => toEnd(spawner, srun, programReadsDevNull(srunLine(node, program)), env, true);
  const runMs: number[] = [];
  /** ws.run called → its srun asked, and its exit told by the step spawner → c.exited resolved. */
  const runOwn: number[] = [];
  const srunMs: number[] = [];
  const srunShumaMs: number[] = [];
  for (let i = 0; i < RUN_ROUNDS; i++) {
    await inTurn(i, [
      async () => {
        const tap = tapSteps(rt);
        try {
          const t = now();
          const c = await ws.run({ exec: 'true', node: 'n2' });
          await c.exited;
          const end = now();
          runMs.push(end - t);
          runOwn.push(tap.asked[0]! - t + (end - tap.told[0]!));
        } finally {
          tap.untap();
        }
      },
      async () => {
        const t = now();
        await bareSrun('n2', 'true');
        srunMs.push(now() - t);
      },
      async () => {
        const t = now();
        await srunAsShuma('n2', 'true');
        srunShumaMs.push(now() - t);
      },
    ]);
  }
  // Per block: RESTARTS runs of a failing command, each relaunched as soon as it ended.
  const restartBlocks: number[] = [];
  const srunLoopBlocks: number[] = [];
  const srunShumaLoopBlocks: number[] = [];
  const ownPart: number[] = [];
  for (let block = 0; block < RESTART_BLOCKS; block++) {
    await inTurn(block, [
      async () => {
        const tap = tapSteps(rt);
        try {
          const t = now();
          const c = await ws.run({ label: `fail-${block}`, exec: 'false', node: 'n1', restart: { onFailure: true, backoffMs: 0, maxBackoffMs: 0, maxRestarts: RESTARTS - 1 } });
          await gaveUp(c);
          restartBlocks.push((now() - t) / RESTARTS);
          for (let k = 1; k < tap.asked.length; k++) ownPart.push(tap.asked[k]! - tap.told[k - 1]!);
        } finally {
          tap.untap();
        }
      },
      async () => {
        const t = now();
        for (let k = 0; k < RESTARTS; k++) await bareSrun('n1', 'false');
        srunLoopBlocks.push((now() - t) / RESTARTS);
      },
      async () => {
        const t = now();
        for (let k = 0; k < RESTARTS; k++) await srunAsShuma('n1', 'false');
        srunShumaLoopBlocks.push((now() - t) / RESTARTS);
      },
    ]);
  }

  progress('(o) Slurm: 2-node pipeline');
  const pipeMs: number[] = [];
  const bashMs: number[] = [];
  const line = `srun ${srunLine('n1', '').slice(0, -1).join(' ')} head -c ${PIPE_BYTES} /dev/zero | srun ${srunLine('n2', '').slice(0, -1).join(' ')} sh -c 'cat > /dev/null'`;
  for (let round = 0; round < PIPE_ROUNDS; round++) {
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
  return [
    { what: `ws.run(true) on n2 → exited (baseline: srun with shuma's step options, stdin /dev/null, started as shuma starts srun; median of ${RUN_ROUNDS}; ${quartiles(runMs, srunMs)}; ${paired(runMs, srunMs)})`, unit: 'ms', shuma: median(runMs), baseline: median(srunMs) },
    { what: `the same (baseline: srun as shuma starts it: its stdin held open, the program's /dev/null on the node; ${paired(runMs, srunShumaMs)})`, unit: 'ms', shuma: median(runMs), baseline: median(srunShumaMs) },
    { what: `shuma's own part of ws.run → exited: ws.run called → its srun asked, plus its exit told → exited resolved (p90 ${quantile(runOwn, 0.9).toFixed(2)}) (baseline: bare srun)`, unit: 'ms', shuma: median(runOwn), baseline: median(srunMs) },
    { what: `restart cycle of a failing command, ${RESTARTS} runs a block, backoff 0 (baseline: srun false relaunched as it ends; median of ${RESTART_BLOCKS} blocks; ${quartiles(restartBlocks, srunLoopBlocks)}; ${paired(restartBlocks, srunLoopBlocks)})`, unit: 'ms/run', shuma: median(restartBlocks), baseline: median(srunLoopBlocks) },
    { what: `the same (baseline: srun as shuma starts it, relaunched as it ends; ${paired(restartBlocks, srunShumaLoopBlocks)})`, unit: 'ms/run', shuma: median(restartBlocks), baseline: median(srunShumaLoopBlocks) },
    { what: `shuma's own part of a cycle: a run's exit told → the next srun asked (median of ${ownPart.length}; p90 ${quantile(ownPart, 0.9).toFixed(2)}) (baseline: one bare srun run)`, unit: 'ms', shuma: median(ownPart), baseline: median(srunLoopBlocks) },
    { what: `2-node pipeline n1 → n2, ${PIPE_BYTES / 2 ** 20} MiB (baseline: srun | srun in bash, shuma's step options; median of ${PIPE_ROUNDS}; time ${paired(pipeMs, bashMs)})`, unit: 'MiB/s', shuma: mibPerS(median(pipeMs)), baseline: mibPerS(median(bashMs)) },
  ];
}
