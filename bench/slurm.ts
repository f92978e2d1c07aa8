// (o) Slurm placement against srun/salloc by hand, in the same run on the same throwaway cluster
// (scripts/slurm-test-cluster.sh, two emulated nodes): create-to-running of a workspace, ws.run
// of one command on a node until it ran (srun true), a restart cycle (srun false again and again),
// and a 2-node pipeline's throughput (srun | srun). Medians.
//
// Create-to-running has three baselines: `salloc --no-shell` alone (a job id, its nodes unknown);
// the same followed by the squeue a user needs to learn its nodes (what a workspace gives:
// ws.placement.nodes); and salloc running the node-reporting command shuma uses (allocation.ts),
// which leaves shuma's own part (hosting the workspace's actor) as the difference.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createRuntime, type Runtime } from '../src/index.js';
import { now, progress, quantile, type Line } from './measure.js';

const run = promisify(execFile);
const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/slurm-test-cluster.sh');
const ROUNDS = 15;
const CREATE_ROUNDS = 30;
const RESTARTS = 40;
const PIPE_BYTES = 256 * 2 ** 20;

/** What shuma's salloc runs (allocation.ts): print the nodes, then end salloc so that it keeps the job. */
const REPORT = 'printf "nodes %s\\n" "$SLURM_JOB_NODELIST" >&2; kill -KILL "$PPID"';

/** The same srun options shuma's steps use (step.ts), for a fair baseline. */
const srunBase = (jobId: string, node: string) => [`--jobid=${jobId}`, '--overlap', `--nodelist=${node}`, '--nodes=1', '--ntasks=1', '--quiet'];

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
  try {
    progress('(o) Slurm: create-to-running');
    const create: number[] = [];
    const salloc: number[] = [];
    const sallocNodes: number[] = [];
    const sallocReport: number[] = [];
    for (let i = 0; i < CREATE_ROUNDS; i++) {
      let t = now();
      const ws = await rt.createWorkspace({ label: `bench-${i}`, placement: { kind: 'slurm', nodes: 1 } });
      create.push(now() - t);
      await ws.stop({ graceMs: 0 });
      t = now();
      const answer = await run('salloc', ['--no-shell', '--no-kill', '--nodes=1', `--job-name=bench-hand-${i}`], { env });
      salloc.push(now() - t);
      const jobId = /Granted job allocation (\d+)/.exec(answer.stderr)?.[1];
      if (!jobId) throw new Error(`salloc by hand: ${answer.stderr}`);
      const listed = await run('squeue', ['--noheader', `--jobs=${jobId}`, '--format=%N'], { env });
      sallocNodes.push(now() - t);
      if (listed.stdout.trim() === '') throw new Error(`squeue by hand listed no node for job ${jobId}`);
      await run('scancel', [jobId], { env });
      t = now();
      // Ends by SIGKILL (the command kills salloc, so that it keeps the job): a rejection here.
      const reported = await run('salloc', ['--no-kill', '--nodes=1', `--job-name=bench-report-${i}`, '/bin/sh', '-c', REPORT], { env }).catch(
        (error: { stderr?: string }) => error,
      );
      sallocReport.push(now() - t);
      if (!/^nodes \S+/m.test(reported.stderr ?? '')) throw new Error(`salloc with the report by hand: ${reported.stderr}`);
      await run('scancel', [`--name=bench-report-${i}`], { env });
    }

    progress('(o) Slurm: ws.run → ran on a node, restart cycle');
    const ws = await rt.createWorkspace({ label: 'bench-steps', placement: { kind: 'slurm', nodes: 2 } });
    const jobId = ws.placement.kind === 'slurm' ? ws.placement.jobId : '';
    const runMs: number[] = [];
    const srunMs: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      let t = now();
      const c = await ws.run({ exec: 'true', node: 'n2' });
      await c.exited;
      runMs.push(now() - t);
      t = now();
      await run('srun', [...srunBase(jobId, 'n2'), 'true'], { env });
      srunMs.push(now() - t);
    }
    let t = now();
    await ws.run({ exec: 'false', node: 'n1', restart: { onFailure: true, backoffMs: 0, maxBackoffMs: 0, maxRestarts: RESTARTS } });
    // commands() keeps only the newest ended runs of a command: the last run is the one with every restart.
    for (;;) {
      const runs = await ws.commands();
      if (runs.some((r) => r.restarts === RESTARTS && !r.alive)) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const restartMs = (now() - t) / (RESTARTS + 1);
    t = now();
    for (let i = 0; i <= RESTARTS; i++) await run('srun', [...srunBase(jobId, 'n1'), 'false'], { env }).catch(() => undefined);
    const srunLoopMs = (now() - t) / (RESTARTS + 1);

    progress('(o) Slurm: 2-node pipeline');
    t = now();
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
    const pipeMs = now() - t;
    if (!done.ok) throw new Error(`the bench pipeline failed: ${JSON.stringify(done.exits)}`);
    const line = `srun ${srunBase(jobId, 'n1').join(' ')} head -c ${PIPE_BYTES} /dev/zero | srun ${srunBase(jobId, 'n2').join(' ')} sh -c 'cat > /dev/null'`;
    t = now();
    await new Promise<void>((resolve, reject) =>
      spawn('bash', ['-c', line], { env, stdio: 'ignore' }).once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bash pipeline: ${code}`)))),
    );
    const bashMs = now() - t;
    await ws.stop({ graceMs: 0 });

    const mibPerS = (ms: number) => PIPE_BYTES / 2 ** 20 / (ms / 1000);
    return [
      { heading: `(o) Slurm placement — shuma against srun/salloc by hand, same cluster (2 emulated nodes), medians of ${ROUNDS} (create: ${CREATE_ROUNDS})` },
      { what: 'create-to-running of a 1-node workspace, its nodes known (baseline: salloc --no-shell, then squeue for its nodes)', unit: 'ms', shuma: quantile(create, 0.5), baseline: quantile(sallocNodes, 0.5) },
      { what: 'the same (baseline: salloc --no-shell alone: a job id, its nodes unknown)', unit: 'ms', shuma: quantile(create, 0.5), baseline: quantile(salloc, 0.5) },
      { what: "the same (baseline: salloc running shuma's node-reporting command: the rest is hosting the actor)", unit: 'ms', shuma: quantile(create, 0.5), baseline: quantile(sallocReport, 0.5) },
      { what: 'ws.run(true) on n2 → exited (baseline: srun --overlap true)', unit: 'ms', shuma: quantile(runMs, 0.5), baseline: quantile(srunMs, 0.5) },
      { what: `restart cycle of a failing command, ${RESTARTS} restarts, backoff 0 (baseline: srun false in a loop)`, unit: 'ms/run', shuma: restartMs, baseline: srunLoopMs },
      { what: `2-node pipeline n1 → n2, ${PIPE_BYTES / 2 ** 20} MiB (baseline: srun | srun in bash)`, unit: 'MiB/s', shuma: mibPerS(pipeMs), baseline: mibPerS(bashMs) },
    ];
  } finally {
    await rt.shutdown({ graceMs: 0 });
    await run(SCRIPT, ['down', root]);
  }
}
