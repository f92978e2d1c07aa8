import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { openPipes, closePipes } from '../src/host/spawn/kernel-pipes.js';
import { isShumaError } from '../src/protocol/errors.js';
import { allocate, sallocArgs, timeLimitMinutes, type Allocation } from '../src/host/placement/slurm/allocation.js';
import { cancelJob, jobState, listSteps, signalSteps } from '../src/host/placement/slurm/job-control.js';
import { readHostlist, runSlurm, slurmEnv, type SlurmCluster } from '../src/host/placement/slurm/slurm-cli.js';
import { sampleSteps, parseDuration, parseSize } from '../src/host/placement/slurm/step-stats.js';
import { NoteFilter, StepReportReader, stepCommandLine, stepExit, type StepOrder } from '../src/host/placement/slurm/step.js';
import { startAfterStdinEnds } from '../src/host/placement/slurm/step-task.js';
import { after, before, describe, test } from 'node:test';
import { fixture, isAlive, pollUntil, processesMentioning, waitGone } from './helpers.js';
import { clusterUp, slurmSkip, type TestCluster } from './slurm-cluster.js';

// The Slurm driver's parts, each against a real cluster of two emulated nodes started by
// scripts/slurm-test-cluster.sh for this file.

const skip = slurmSkip();

interface Step {
  stdout: string[];
  reader: StepReportReader;
  pid: number;
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

interface StepStdio {
  /** A descriptor for srun's stdin, or 'held': a pipe kept open until the test ends it. Absent: /dev/null, as the placement does. */
  stdin?: number | 'held';
  stdout?: number;
}

/** Starts a step as the Slurm placement's spawner does: a step without stdin runs in the wrapper of step-task.ts. */
function startStep(cluster: SlurmCluster, order: StepOrder, program: string, argv: string[], stdio: StepStdio = {}): Step & { child: ChildProcess } {
  const line = stepCommandLine('srun', order, program, argv);
  const args = typeof stdio.stdin === 'number' ? line.args : startAfterStdinEnds(line.args);
  const child = spawn(line.file, args, {
    env: slurmEnv(cluster),
    stdio: [stdio.stdin === 'held' ? 'pipe' : (stdio.stdin ?? 'ignore'), stdio.stdout ?? 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const reader = new StepReportReader();
  child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => reader.write(chunk));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      reader.end();
      resolve({ code, signal });
    }),
  );
  return { stdout, reader, pid: child.pid!, ended, child };
}

async function stepNamed(cluster: SlurmCluster, jobId: string, name: string): Promise<string[]> {
  const steps = await pollUntil(() => listSteps(cluster, jobId), (s) => s.has(name), `step ${name} in squeue`);
  return steps.get(name)!;
}

describe('Slurm driver', { skip }, () => {
  let tc: TestCluster;
  let cluster: SlurmCluster;
  let job: Allocation;

  after(() => tc?.down());
  before(async () => {
    tc = await clusterUp();
    cluster = { conf: tc.conf };
    job = await allocate(cluster, { name: 'shuma-driver-test', nodes: 2, memoryBytes: 256 << 20, ttlMs: 90_000, waitMs: 20_000 });
  });

  test('an allocation of two nodes is one job, with the memory and the backstop time asked', async () => {
    assert.deepEqual(job.nodes, ['n1', 'n2']);
    const shown = await runSlurm(cluster, 'scontrol', ['--oneliner', 'show', 'job', job.jobId]);
    assert.match(shown.stdout, /JobState=RUNNING/);
    assert.match(shown.stdout, /MinMemoryNode=256M/);
    // ttlMs 90 s: --time 3 minutes (2 rounded up, plus one), after shuma's own timer.
    assert.match(shown.stdout, /TimeLimit=00:03:00/);
    assert.equal(timeLimitMinutes(60_000), 2);
    assert.ok(sallocArgs({ name: 'x', waitMs: 1000 }).includes('--no-kill'));
  });

  test('the allocation is held by no local process: salloc and its node-reporting command are gone, the job runs on, on the nodes it reported', async () => {
    const name = `shuma-held-${process.pid}`;
    const held = await allocate(cluster, { name, nodelist: ['n2'], waitMs: 20_000 });
    try {
      assert.deepEqual(held.nodes, ['n2']);
      // The create answered at the report; salloc ends by its command's SIGKILL right after,
      // before it could relinquish: once settled, nothing local is left and the job still RUNS.
      await held.settled;
      assert.deepEqual(processesMentioning(name), []);
      const state = await jobState(cluster, held.jobId);
      assert.equal(state.state, 'RUNNING');
      assert.deepEqual(state.nodes, held.nodes);
    } finally {
      await cancelJob(cluster, held.jobId);
    }
  });

  test('a request queued behind busy resources may wait (the partition could hold it), and gives up after its wait with nothing queued', async () => {
    const name = `shuma-busy-${process.pid}`;
    // n2's 2048 MB minus the 256 MB the file's job holds there: 1900 MB can be had, but not now.
    await assert.rejects(
      allocate(cluster, { name, nodelist: ['n2'], memoryBytes: 1900 * 2 ** 20, waitMs: 1000 }),
      (e: unknown) => isShumaError(e) && e.code === 'PLACEMENT_FAILED' && /not free within 1 s/.test(e.message),
    );
    assert.equal((await runSlurm(cluster, 'squeue', ['--noheader', `--name=${name}`])).stdout.trim(), '');
  });

  test('a step runs on the node asked, its stdout a local pipe, its exit code passed through', async () => {
    const step = startStep(cluster, { jobId: job.jobId, node: 'n2', name: 'shuma-t-exit' }, 'sh', ['-c', 'echo "on $SLURMD_NODENAME"; exit 3']);
    const end = await step.ended;
    assert.equal(step.stdout.join(''), 'on n2\n');
    assert.deepEqual(stepExit(end.code, end.signal, step.reader.report, false), { code: 3, signal: null, reason: null });
  });

  test('scancel --signal reaches the task (a trap runs), and a task ended by a signal reads as that signal', async () => {
    const trap = startStep(cluster, { jobId: job.jobId, node: 'n1', name: 'shuma-t-trap' }, 'sh', [
      '-c',
      'trap "echo got TERM; exit 7" TERM; echo ready; while :; do sleep 0.1; done',
    ]);
    await pollUntil(() => trap.stdout.join(''), (s) => s.includes('ready'), 'the trap in place');
    await signalSteps(cluster, await stepNamed(cluster, job.jobId, 'shuma-t-trap'), 'SIGTERM');
    const end = await trap.ended;
    assert.match(trap.stdout.join(''), /got TERM/);
    assert.deepEqual(stepExit(end.code, end.signal, trap.reader.report, false), { code: 7, signal: null, reason: null });

    const plain = startStep(cluster, { jobId: job.jobId, node: 'n2', name: 'shuma-t-term' }, 'sh', ['-c', 'echo ready; exec sleep 600']);
    await pollUntil(() => plain.stdout.join(''), (s) => s.includes('ready'), 'the sleeper');
    await signalSteps(cluster, await stepNamed(cluster, job.jobId, 'shuma-t-term'), 'SIGTERM');
    const ended = await plain.ended;
    assert.deepEqual(stepExit(ended.code, ended.signal, plain.reader.report, false), { code: null, signal: 'SIGTERM', reason: null });
  });

  test('two steps on two nodes stream through a kernel pipe, as a local pipeline', async () => {
    const [pipe] = await openPipes(1);
    const gen = startStep(cluster, { jobId: job.jobId, node: 'n1', name: 'shuma-t-gen' }, 'seq', ['1', '100000'], { stdout: pipe!.writeFd });
    const count = startStep(cluster, { jobId: job.jobId, node: 'n2', name: 'shuma-t-count' }, 'wc', ['-l'], { stdin: pipe!.readFd });
    closePipes([pipe!]);
    const [a, b] = await Promise.all([gen.ended, count.ended]);
    assert.equal(a.code, 0);
    assert.equal(b.code, 0);
    assert.equal(count.stdout.join('').trim(), '100000');
  });

  test("a step without stdin runs its program only once slurmstepd has read srun's stdin EOF (else a reset can cut its output)", async () => {
    // The cause of the cross-node stream loss, made deterministic: srun's stdin is held open, so
    // its EOF message is not sent. Unwrapped, seq would run and exit at once, and slurmstepd would
    // close its I/O connection before that message was read — a RST that loses unsent output.
    const marker = `shuma-held-${process.pid}`;
    const step = startStep(cluster, { jobId: job.jobId, node: 'n1', name: 'shuma-t-held' }, 'sh', ['-c', `seq 1 100000 # ${marker}`], { stdin: 'held' });
    await stepNamed(cluster, job.jobId, 'shuma-t-held');
    await pollUntil(() => processesMentioning(marker).length, (n) => n > 0, 'the wrapper on the node');
    assert.equal(step.stdout.join(''), '', 'the program ran before srun sent its stdin EOF');
    step.child.stdin!.end();
    const end = await step.ended;
    assert.deepEqual(stepExit(end.code, end.signal, step.reader.report, false), { code: 0, signal: null, reason: null });
    assert.equal(step.stdout.join('').split('\n').length - 1, 100000);
    assert.equal(step.reader.report.outputLost, false);
  });

  test('many stdin-less steps at once each deliver all of their output (the load the loss needed)', async () => {
    for (let round = 0; round < 3; round++) {
      const steps = Array.from({ length: 6 }, (_, i) =>
        startStep(cluster, { jobId: job.jobId, node: i % 2 === 0 ? 'n1' : 'n2', name: `shuma-t-many-${round}-${i}` }, 'seq', ['1', '100000']),
      );
      const ends = await Promise.all(steps.map((s) => s.ended));
      for (const [i, step] of steps.entries()) {
        assert.equal(ends[i]!.code, 0);
        assert.equal(step.reader.report.outputLost, false, `step ${i} of round ${round}: srun lost its I/O connection`);
        assert.equal(step.stdout.join('').split('\n').length - 1, 100000, `step ${i} of round ${round}`);
      }
    }
  });

  test('a program ended by a signal under the wrapper still reads as that signal; its exit code passes through', async () => {
    const killed = startStep(cluster, { jobId: job.jobId, node: 'n2', name: 'shuma-t-self-kill' }, 'sh', ['-c', 'kill -USR1 $$']);
    const a = await killed.ended;
    assert.deepEqual(stepExit(a.code, a.signal, killed.reader.report, false), { code: null, signal: 'SIGUSR1', reason: null });
    const coded = startStep(cluster, { jobId: job.jobId, node: 'n2', name: 'shuma-t-code' }, 'sh', ['-c', 'read x; echo "stdin:$x"; exit 4']);
    const b = await coded.ended;
    // The program's stdin is /dev/null on the node, as a local command's.
    assert.equal(coded.stdout.join(''), 'stdin:\n');
    assert.deepEqual(stepExit(b.code, b.signal, coded.reader.report, false), { code: 4, signal: null, reason: null });
  });

  test('limits reach the task on its node (nofile, cpuSeconds), not srun', async () => {
    const step = startStep(cluster, { jobId: job.jobId, node: 'n1', name: 'shuma-t-limits', limits: { nofile: 77, cpuSeconds: 9 } }, 'sh', [
      '-c',
      'ulimit -n; ulimit -t',
    ]);
    await step.ended;
    assert.equal(step.stdout.join(''), '77\n9\n');
  });

  test("stats come from the job's steps (sstat)", async () => {
    const step = startStep(cluster, { jobId: job.jobId, node: 'n1', name: 'shuma-t-stats' }, 'python3', [fixture('alloc.py'), '40']);
    await pollUntil(() => step.stdout.join(''), (s) => s.includes('ready'), 'the allocation');
    const ids = await stepNamed(cluster, job.jobId, 'shuma-t-stats');
    const sample = await pollUntil(
      () => sampleSteps(cluster, job.jobId),
      (samples) => (samples.find((s) => s.stepId === ids[0])?.rssBytes ?? 0) > 30 << 20,
      'an RSS sample of the step above 30 MiB',
    );
    assert.ok(sample.length >= 1);
    await signalSteps(cluster, ids, 'SIGKILL');
    await step.ended;
    assert.equal(parseSize('6864K'), 6864 * 1024);
    assert.equal(parseDuration('01:02:03.5'), 3_723_500_000);
    assert.equal(parseDuration('1-00:00:01'), 86_401_000_000);
  });

  test('a step past the job memory ends with reason oom (the node cgroup enforces --mem)', async () => {
    const step = startStep(cluster, { jobId: job.jobId, node: 'n2', name: 'shuma-t-oom' }, 'python3', [fixture('alloc.py'), '600']);
    const end = await step.ended;
    assert.equal(stepExit(end.code, end.signal, step.reader.report, false).reason, 'oom');
  });

  test('a bad partition, more nodes than exist, a missing configuration: typed errors, no job queued', async () => {
    const queuedBefore = (await runSlurm(cluster, 'squeue', ['--noheader', '--format=%i'])).stdout.trim().split('\n').filter(Boolean);
    await assert.rejects(
      allocate(cluster, { name: 'shuma-bad-part', partition: 'nope', waitMs: 5000 }),
      (e: unknown) => isShumaError(e) && e.code === 'PLACEMENT_FAILED' && /nope/.test(e.message) && /sinfo/.test(e.message),
    );
    await assert.rejects(
      allocate(cluster, { name: 'shuma-too-many', nodes: 5, waitMs: 5000 }),
      (e: unknown) => isShumaError(e) && e.code === 'PLACEMENT_FAILED' && /TotalNodes=2/.test(e.message) && /at most 2/.test(e.message),
    );
    await assert.rejects(
      allocate(cluster, { name: 'shuma-too-much', memoryBytes: 100 * 2 ** 30, waitMs: 5000 }),
      (e: unknown) => isShumaError(e) && e.code === 'PLACEMENT_FAILED' && /Memory specification/.test(e.message),
    );
    await assert.rejects(
      allocate({ conf: `${tc.root}/missing.conf` }, { name: 'shuma-no-conf', waitMs: 5000 }),
      (e: unknown) => isShumaError(e) && e.code === 'PLACEMENT_UNAVAILABLE' && /SLURM_CONF/.test(e.message),
    );
    const queuedAfter = (await runSlurm(cluster, 'squeue', ['--noheader', '--format=%i'])).stdout.trim().split('\n').filter(Boolean);
    assert.deepEqual(queuedAfter, queuedBefore);
  });

  test('no controller: PLACEMENT_UNAVAILABLE, saying what to check', async () => {
    // The same cluster's configuration, pointing at a port where no controller listens.
    const conf = `${tc.root}/no-controller.conf`;
    await writeFile(conf, readFileSync(tc.conf, 'utf8').replace(/^SlurmctldPort=\d+$/m, 'SlurmctldPort=9'));
    await assert.rejects(
      allocate({ conf }, { name: 'shuma-no-ctld', waitMs: 5000 }),
      (e: unknown) => isShumaError(e) && e.code === 'PLACEMENT_UNAVAILABLE' && /slurmctld/.test(e.message),
    );
  });

  test('cancelJob ends every step and waits until squeue no longer lists the job', async () => {
    const other = await allocate(cluster, { name: 'shuma-cancel', nodes: 2, waitMs: 20_000 });
    const marker = `shuma-cancel-${process.pid}`;
    const steps = other.nodes.map((node) =>
      startStep(cluster, { jobId: other.jobId, node, name: `shuma-t-c-${node}` }, 'sh', ['-c', `echo ready; exec sleep 600 # ${marker}`]),
    );
    for (const step of steps) await pollUntil(() => step.stdout.join(''), (s) => s.includes('ready'), 'a sleeper');
    await cancelJob(cluster, other.jobId);
    assert.equal((await jobState(cluster, other.jobId)).state, null);
    for (const step of steps) await step.ended;
    await pollUntil(() => processesMentioning(marker), (pids) => pids.length === 0, 'no step process left');
  });

  // Last: it takes node n2 away from this file's cluster.
  test("a node whose slurmd dies: the job shrinks to the live node and the step's exit reads node-lost", async () => {
    const marker = `shuma-lost-${process.pid}`;
    const step = startStep(cluster, { jobId: job.jobId, node: 'n2', name: 'shuma-t-lost' }, 'sh', ['-c', `echo ready; exec sleep 600 # ${marker}`]);
    await pollUntil(() => step.stdout.join(''), (s) => s.includes('ready'), 'the step on n2');
    process.kill(await tc.pidOf('slurmd-n2'), 'SIGKILL');
    const end = await step.ended;
    const state = await jobState(cluster, job.jobId);
    assert.deepEqual(state.nodes, ['n1']);
    assert.equal(stepExit(end.code, end.signal, step.reader.report, !state.nodes.includes('n2')).reason, 'node-lost');
    // The job survived on n1 (--no-kill): a new step still runs there.
    const after = startStep(cluster, { jobId: job.jobId, node: 'n1', name: 'shuma-t-after' }, 'echo', ['still here']);
    await after.ended;
    assert.equal(after.stdout.join(''), 'still here\n');
  });
});

test("srun's notes are kept out of a step's stderr, split across chunks or not; the program's lines pass at once", () => {
  const filter = new NoteFilter();
  const out = [
    filter.write(Buffer.from('err one\nsr')),
    filter.write(Buffer.from('un: error: n2: task 0: Exited with exit code 3\npartial')),
    filter.write(Buffer.from(' line\nslurmstepd-n1: error: *** STEP 1.2 CANCELLED ***\nslu')),
  ].map(String);
  assert.deepEqual(out, ['err one\n', 'partial', ' line\n']);
  // 'slu' could have become a note: held, and given back at the end when it did not.
  assert.equal(String(filter.end()), 'slu');
  const reader = new StepReportReader();
  reader.write(Buffer.from('srun: error: n2: task 0: Exi'));
  reader.write(Buffer.from('ted with exit code 3\nsrun: error: Node failure on n2\n'));
  reader.end();
  assert.equal(reader.report.exitCode, 3);
  assert.equal(reader.report.nodeFailure, 'n2');
  assert.equal(reader.report.outputLost, false);
  // What srun says when slurmstepd reset its I/O connection mid-stream (output lost).
  const lost = new StepReportReader();
  lost.write(Buffer.from('srun: error: _server_read: fd 13 got error or unexpected eof reading message body\n'));
  lost.write(Buffer.from('srun: error: step_launch_notify_io_failure: aborting, io error with slurmstepd on node 0\n'));
  lost.end();
  assert.equal(lost.report.outputLost, true);
});

test("Slurm's node lists are read without a client call when they have the usual form", () => {
  assert.deepEqual(readHostlist('n1'), ['n1']);
  assert.deepEqual(readHostlist('n[1-2]'), ['n1', 'n2']);
  assert.deepEqual(readHostlist('gpu[08-10,12],login'), ['gpu08', 'gpu09', 'gpu10', 'gpu12', 'login']);
  assert.deepEqual(readHostlist('rack[1-2]-a'), ['rack1-a', 'rack2-a']);
  // Two bracket groups, a reversed range, an unclosed bracket: left to scontrol show hostnames.
  assert.equal(readHostlist('r[1-2]n[1-2]'), null);
  assert.equal(readHostlist('n[3-1]'), null);
  assert.equal(readHostlist('n[1-2'), null);
});

describe('scripts/slurm-test-cluster.sh', { skip }, () => {
  test('down leaves no daemon, step or file of the cluster behind', async () => {
    const tc = await clusterUp();
    const daemons = await Promise.all((['slurmctld', 'slurmd-n1', 'slurmd-n2', 'munged'] as const).map((d) => tc.pidOf(d)));
    const cluster = { conf: tc.conf };
    const job = await allocate(cluster, { name: 'shuma-script-test', nodes: 1, waitMs: 20_000 });
    const marker = `shuma-script-${process.pid}`;
    const step = startStep(cluster, { jobId: job.jobId, node: job.nodes[0]!, name: 'shuma-t-s' }, 'sh', ['-c', `echo ready; exec sleep 600 # ${marker}`]);
    await pollUntil(() => step.stdout.join(''), (s) => s.includes('ready'), 'a step');
    await tc.down();
    for (const pid of daemons) await waitGone(pid);
    await step.ended;
    assert.deepEqual(processesMentioning(marker), []);
    assert.equal(existsSync(tc.root), false);
    assert.ok(daemons.every((pid) => !isAlive(pid)));
  });
});
