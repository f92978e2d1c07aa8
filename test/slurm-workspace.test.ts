import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { createRuntime, isShumaError, type Runtime, type Workspace } from '../src/index.js';
import { runSlurm } from '../src/host/placement/slurm/slurm-cli.js';
import { coreOf } from '../src/host/runtime.js';
import { parseSpecText } from '../src/cli/spec-file.js';
import { psText } from '../src/cli/ps.js';
import { commandSpecFrom } from '../src/cli/run.js';
import { startChildRuntime } from './child-runtime.js';
import { fixture, pollUntil, processesMentioning, startRuntime, stateOf, waitFor, waitForOutput } from './helpers.js';
import { clusterUp, slurmSkip, type TestCluster } from './slurm-cluster.js';

// Workspaces placed on a real Slurm cluster (two emulated nodes, started for this file), through
// the same API as local ones, beside a local one in the same runtime.

const skip = slurmSkip();

describe('a Slurm-placed workspace', { skip }, () => {
  let tc: TestCluster;
  let rt: Runtime;
  const dir = mkdtempSync(path.join(tmpdir(), 'shuma-slurm-ws-'));
  const jobsListed = async () =>
    (await runSlurm({ conf: tc.conf }, 'squeue', ['--noheader', '--format=%i %j'])).stdout.split('\n').filter(Boolean);
  const jobGone = (jobId: string) => pollUntil(jobsListed, (jobs) => !jobs.some((j) => j.startsWith(`${jobId} `)), `job ${jobId} gone from squeue`, 50);

  after(async () => {
    await tc?.down();
    rmSync(dir, { recursive: true, force: true });
  });
  before(async () => {
    tc = await clusterUp();
    rt = await startRuntime({ slurm: { conf: tc.conf, allocationWaitMs: 20_000 }, statsIntervalMs: 0 });
  });

  const slurmWs = (label: string, extra: Record<string, unknown> = {}) =>
    rt.createWorkspace({ label, placement: { kind: 'slurm', nodes: 2 }, ...extra });

  test('is one job of the nodes asked, beside a local workspace in the same runtime', async () => {
    const ws = await slurmWs('two-nodes', { limits: { memoryBytes: 256 << 20 }, ttlMs: 600_000 });
    const local = await rt.createWorkspace({ label: 'here' });
    assert.equal(ws.placement.kind, 'slurm');
    assert.ok(ws.placement.kind === 'slurm' && /^\d+$/.test(ws.placement.jobId));
    assert.deepEqual(ws.placement.kind === 'slurm' && ws.placement.nodes, ['n1', 'n2']);
    assert.deepEqual(local.placement, { kind: 'local' });
    const jobId = ws.placement.kind === 'slurm' ? ws.placement.jobId : '';
    assert.ok((await jobsListed()).includes(`${jobId} shuma-${ws.id}`));
    const there = await ws.run({ exec: 'sh', argv: ['-c', 'echo "out $SLURMD_NODENAME"; echo err >&2; exit 3'], node: 'n2' });
    const here = await local.run({ exec: 'sh', argv: ['-c', 'echo local'] });
    assert.deepEqual(await there.exited, { code: 3, signal: null, status: 3 });
    await here.exited;
    assert.equal((await ws.logs(there.id, { stream: 'stdout' })).toString(), 'out n2\n');
    assert.match((await ws.logs(there.id, { stream: 'stderr' })).toString(), /^err\n/);
    assert.equal((await local.logs(here.id)).toString(), 'local\n');
    const [info] = await ws.commands();
    assert.equal(info!.node, 'n2');
    assert.equal(info!.exitStatus, 3);
    assert.equal((await local.commands())[0]!.node, undefined);
    await ws.stop();
    await jobGone(jobId);
    // The create answered at salloc's report, before salloc ended: stop() waits for that end too.
    assert.deepEqual(processesMentioning(`shuma-${ws.id}`), []);
    await local.stop();
  });

  test('restart with backoff and maxRestarts, and why(), work on steps', async () => {
    const ws = await slurmWs('restarts');
    const c = await ws.run({ exec: 'sh', argv: ['-c', 'echo try; exit 1'], label: 'flaky', restart: { onFailure: true, backoffMs: 20, maxRestarts: 2 } });
    const final = await pollUntil(() => ws.commands(), (cs) => cs.length === 3 && cs.every((x) => !x.alive), 'three runs ended', 50);
    assert.deepEqual(final.map((x) => x.restarts), [0, 1, 2]);
    assert.ok(final.every((x) => x.exitStatus === 1 && x.node !== undefined));
    const trail = await ws.why(c.id);
    assert.ok(trail.length >= 3, JSON.stringify(trail));
    await ws.stop();
  });

  test('stop sends SIGTERM to the step (a trap runs), then SIGKILL after the grace; the job leaves squeue', async () => {
    const ws = await slurmWs('stopping');
    const marker = `shuma-slurm-stop-${process.pid}`;
    const polite = await ws.run({ exec: 'sh', argv: ['-c', `trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.1; done # ${marker}`], node: 'n1' });
    const stubborn = await ws.run({ exec: fixture('ignore-term.sh'), node: 'n2' });
    await waitForOutput(ws, polite.id, 'ready');
    await waitForOutput(ws, stubborn.id, 'ready');
    const jobId = ws.placement.kind === 'slurm' ? ws.placement.jobId : '';
    const result = await ws.stop({ graceMs: 500 });
    assert.equal(result.reaped, 2);
    // The trap ran: SIGTERM reached the task itself, not only srun.
    assert.deepEqual(await polite.exited, { code: 0, signal: null, status: 0 });
    assert.equal((await stubborn.exited).signal, 'SIGKILL');
    await jobGone(jobId);
    await pollUntil(() => processesMentioning(marker), (p) => p.length === 0, 'no step process left', 50);
  });

  test('a pipeline across two nodes streams stdout to stdin and succeeds', async () => {
    const ws = await slurmWs('etl');
    const p = await rt.runPipeline({
      label: 'etl',
      workspace: ws.id,
      nodes: [
        { label: 'gen', exec: 'seq', argv: ['1', '100000'], node: 'n1' },
        { label: 'count', exec: 'wc', argv: ['-l'], node: 'n2' },
      ],
      edges: [{ from: 'gen', to: 'count' }],
    });
    const done = await p.done;
    assert.equal(done.ok, true);
    const count = p.nodes.find((n) => n.label === 'count')!;
    assert.equal((await ws.logs(count.commandId, { stream: 'stdout' })).toString().trim(), '100000');
    const nodes = Object.fromEntries((await ws.commands()).map((c) => [c.label, c.node]));
    assert.deepEqual(nodes, { gen: 'n1', count: 'n2' });
    await ws.stop();
  });

  test('yes | head -1 across nodes ends at once and is a success (SIGPIPE upstream); a failing pipeline restarts as a unit', async () => {
    const ws = await slurmWs('pipes');
    const quick = await rt.runPipeline({
      label: 'yes-head',
      workspace: ws.id,
      nodes: [
        { label: 'yes', exec: 'yes', node: 'n1' },
        { label: 'head', exec: 'head', argv: ['-1'], node: 'n2' },
      ],
      edges: [{ from: 'yes', to: 'head' }],
    });
    const first = await quick.done;
    assert.equal(first.ok, true, JSON.stringify(first.exits));
    const failing = await rt.runPipeline({
      label: 'fails',
      workspace: ws.id,
      nodes: [
        { label: 'gen', exec: 'echo', argv: ['x'], node: 'n1' },
        { label: 'bad', exec: 'sh', argv: ['-c', 'cat >/dev/null; exit 2'], node: 'n2' },
      ],
      edges: [{ from: 'gen', to: 'bad' }],
      restart: { onFailure: true, backoffMs: 20, maxRestarts: 1 },
    });
    const result = await failing.done;
    assert.equal(result.ok, false);
    assert.equal(result.restarts, 1);
    assert.equal(result.exits.bad!.status, 2);
    await ws.stop();
  });

  test("stats() and quota() come from the job's steps; memory past the job's --mem ends a command with reason oom", async () => {
    const ws = await slurmWs('memory', { limits: { memoryBytes: 192 << 20 } });
    const holder = await ws.run({ exec: 'python3', argv: [fixture('alloc.py'), '60'], node: 'n1' });
    await waitForOutput(ws, holder.id, 'ready');
    const stats = await pollUntil(() => ws.stats(), (s) => (s.rssBytes ?? 0) > 50 << 20, 'an RSS sample above 50 MiB', 200);
    assert.equal(stats.source, 'cgroup');
    assert.equal(stats.commandsAlive, 1);
    assert.equal((await ws.quota()).memLimit, 192 << 20);
    const hog = await ws.run({ exec: 'python3', argv: [fixture('alloc.py'), '400'], node: 'n2' });
    await hog.exited;
    const info = (await ws.commands()).find((c) => c.id === hog.id)!;
    assert.equal(info.reason, 'oom');
    assert.equal(info.exitStatus, 137);
    assert.equal((await rt.health()).aliveWorkspaces >= 1, true);
    await ws.stop({ graceMs: 0 });
  });

  test('bad placement fields are INVALID_SPEC; what Slurm refuses is PLACEMENT_FAILED; neither leaves a job', async () => {
    const before = await jobsListed();
    for (const placement of [{ kind: 'k8s' }, { kind: 'slurm', nodes: 0 }, { kind: 'slurm', partition: 'a b' }, { kind: 'slurm', nodelist: [] }, { kind: 'local', nodes: 2 }]) {
      await assert.rejects(
        rt.createWorkspace({ label: 'bad', placement } as never),
        (e: unknown) => isShumaError(e) && e.code === 'INVALID_SPEC' && /placement/.test(e.message),
        JSON.stringify(placement),
      );
    }
    await assert.rejects(
      rt.createWorkspace({ label: 'bad', placement: { kind: 'slurm', partition: 'nope' } }),
      (e: unknown) => isShumaError(e) && e.code === 'PLACEMENT_FAILED' && /nope/.test(e.message),
    );
    await assert.rejects(
      rt.createWorkspace({ label: 'bad', placement: { kind: 'slurm', nodes: 3 } }),
      (e: unknown) => isShumaError(e) && e.code === 'PLACEMENT_FAILED' && /at most 2/.test(e.message),
    );
    const ws = await slurmWs('node-check');
    await assert.rejects(
      ws.run({ exec: 'true', node: 'n9' }),
      (e: unknown) => isShumaError(e) && e.code === 'SPAWN_FAILED' && /n9/.test(e.message) && /n1, n2/.test(e.message),
    );
    await ws.stop();
    assert.deepEqual(await jobsListed(), before);
    assert.equal((await rt.listWorkspaces()).filter((w) => w.label === 'bad').length, 0);
  });

  test('a cwd that does not exist is INVALID_SPEC; the allocation asked before its check is withdrawn: no job, no salloc, no actor left', async () => {
    const actors = await actorsHosted(rt);
    const missing = path.join(dir, 'no-such-dir');
    const ids = [0, 1, 2].map(() => coreOf(rt).newId());
    for (const [i, id] of ids.entries()) {
      await assert.rejects(
        rt.createWorkspace({ label: `bad-cwd-${i}`, placement: { kind: 'slurm', nodes: 2 }, cwd: missing }, { id }),
        (e: unknown) => isShumaError(e) && e.code === 'INVALID_SPEC' && e.field === 'cwd' && e.message.includes(missing),
      );
      assert.deepEqual(processesMentioning(`--job-name=shuma-${id}`), [], 'no salloc left');
    }
    const jobs = await jobsListed();
    assert.ok(!jobs.some((j) => ids.some((id) => j.endsWith(` shuma-${id}`))), `no job queued or granted: ${jobs.join(', ')}`);
    assert.equal(await actorsHosted(rt), actors, 'its actor was let go');
    for (const id of ids) assert.equal(coreOf(rt).registry.get(id), undefined);
    // The placement still works after the withdrawals.
    const ws = await slurmWs('cwd-after', { cwd: dir });
    assert.equal(ws.placement.kind === 'slurm' && ws.placement.nodes.length, 2);
    await ws.stop();
  });

  test('no cluster configured or reachable: PLACEMENT_UNAVAILABLE', async () => {
    const other = await createRuntime({ workers: 1, slurm: { conf: path.join(tc.root, 'absent.conf') } });
    try {
      await assert.rejects(
        other.createWorkspace({ label: 'nowhere', placement: { kind: 'slurm' } }),
        (e: unknown) => isShumaError(e) && e.code === 'PLACEMENT_UNAVAILABLE' && /SLURM_CONF/.test(e.message),
      );
      assert.deepEqual(await other.listWorkspaces(), []);
    } finally {
      await other.shutdown();
    }
  });

  test('a TTL ends the workspace and its job; shutdown ends every job', async () => {
    const ttl = await slurmWs('short', { ttlMs: 800 });
    const ttlJob = ttl.placement.kind === 'slurm' ? ttl.placement.jobId : '';
    await ttl.run({ exec: 'sleep', argv: ['600'] });
    await waitFor(ttl.subscribe.bind(ttl), (s) => stateOf(s) === 'stopped', 'the TTL stop');
    await jobGone(ttlJob);

    const second = await createRuntime({ workers: 1, slurm: { conf: tc.conf } });
    const ws = await second.createWorkspace({ label: 'until-shutdown', placement: { kind: 'slurm' } });
    const jobId = ws.placement.kind === 'slurm' ? ws.placement.jobId : '';
    await ws.run({ exec: 'sleep', argv: ['600'] });
    await second.shutdown();
    assert.ok(!(await jobsListed()).some((j) => j.startsWith(`${jobId} `)), 'shutdown waited for the job to leave squeue');
  });

  // Most of both nodes' memory held by hand, as another user's job would: a request for more waits in the queue.
  const holdNodes = async (): Promise<() => Promise<void>> => {
    const name = `blocker-${process.pid}`;
    const answer = await runSlurm({ conf: tc.conf }, 'salloc', ['--no-shell', '--no-kill', '--nodes=2', '--mem=1800M', `--job-name=${name}`]);
    assert.equal(answer.code, 0, answer.stderr);
    return async () => {
      await runSlurm({ conf: tc.conf }, 'scancel', [`--name=${name}`]);
      await pollUntil(jobsListed, (jobs) => !jobs.some((j) => j.endsWith(` ${name}`)), 'the blocker gone', 50);
    };
  };
  const waiting = { placement: { kind: 'slurm' as const, nodes: 2 }, limits: { memoryBytes: 512 << 20 } };
  /** The name (shuma-<workspace id>) of the one shuma job squeue lists as pending. */
  const pendingJob = async () => {
    const pending = async () =>
      (await runSlurm({ conf: tc.conf }, 'squeue', ['--noheader', '--states=PENDING', '--format=%j'])).stdout.split('\n').filter((j) => j.startsWith('shuma-'));
    return (await pollUntil(pending, (jobs) => jobs.length === 1, 'the workspace\'s request queued', 20))[0]!;
  };
  const actorsHosted = async (of: Runtime) => (await coreOf(of).workerStats()).reduce((sum, w) => sum + w.actors, 0);

  test('a create waiting for its allocation is hosted but not listed; a shutdown meanwhile withdraws the request: RUNTIME_CLOSED, no job queued, no salloc left', async () => {
    const release = await holdNodes();
    const other = await createRuntime({ workers: 1, slurm: { conf: tc.conf, allocationWaitMs: 60_000 } });
    try {
      const outcome = other.createWorkspace({ label: 'waits', ...waiting }).then(() => null, (e: unknown) => e);
      const name = await pendingJob();
      assert.deepEqual(await other.listWorkspaces(), []);
      assert.equal((await other.health()).aliveWorkspaces, 0);
      // Hosted while salloc runs (create-while-placing.ts); the worker's count is read a round trip later.
      await pollUntil(() => actorsHosted(other), (n) => n === 1, 'its actor hosted while salloc waits');
      await other.shutdown();
      const error = await outcome;
      assert.ok(isShumaError(error) && error.code === 'RUNTIME_CLOSED' && /no job queued/.test(error.message), String(error));
      assert.ok(!(await jobsListed()).some((j) => j.endsWith(` ${name}`)), 'nothing of the request is queued');
      assert.deepEqual(processesMentioning(name), [], 'its salloc is gone');
    } finally {
      await other.shutdown();
      await release();
    }
  });

  test('a TTL that runs out while the allocation waits ends the create: WORKSPACE_STOPPED (ttl), no job queued, no actor left', async () => {
    const release = await holdNodes();
    try {
      const actors = await actorsHosted(rt);
      const outcome = rt.createWorkspace({ label: 'ttl-first', ttlMs: 1000, ...waiting }).then(() => null, (e: unknown) => e);
      const name = await pendingJob();
      const error = await outcome;
      assert.ok(isShumaError(error) && error.code === 'WORKSPACE_STOPPED' && /\(ttl\)/.test(error.message), String(error));
      assert.ok(!(await jobsListed()).some((j) => j.endsWith(` ${name}`)), 'nothing of the request is queued');
      assert.deepEqual(processesMentioning(name), []);
      assert.equal(await actorsHosted(rt), actors);
      assert.ok(!(await rt.listWorkspaces()).some((w) => w.label === 'ttl-first'));
    } finally {
      await release();
    }
  });

  test("a create whose salloc has not answered yet (no controller answers) still ends at its TTL or a shutdown: nothing of it left", async () => {
    // While the controller does not answer (a port nobody listens on), salloc says nothing for seconds.
    const conf = path.join(tc.root, 'silent.conf');
    writeFileSync(conf, readFileSync(tc.conf, 'utf8').replace(/^SlurmctldPort=\d+$/m, 'SlurmctldPort=9'));
    const other = await createRuntime({ workers: 1, slurm: { conf, allocationWaitMs: 60_000 } });
    const sallocOf = async () => {
      const [ws] = await pollUntil(() => [...coreOf(other).registry.allPlacing()], (placing) => placing.length === 1, 'the workspace placing');
      const name = `--job-name=shuma-${ws!.id}`;
      await pollUntil(() => processesMentioning(name), (p) => p.length === 1, 'its salloc started');
      return name;
    };
    try {
      const ttl = other.createWorkspace({ label: 'silent-ttl', ttlMs: 300, placement: { kind: 'slurm' } }).then(() => null, (e: unknown) => e);
      const ttlSalloc = await sallocOf();
      const ttlError = await ttl;
      assert.ok(isShumaError(ttlError) && ttlError.code === 'WORKSPACE_STOPPED' && /\(ttl\)/.test(ttlError.message), String(ttlError));
      assert.deepEqual(processesMentioning(ttlSalloc), [], 'its salloc is gone');
      assert.equal(await actorsHosted(other), 0, 'its actor was let go');

      const waiting = other.createWorkspace({ label: 'silent', placement: { kind: 'slurm' } }).then(() => null, (e: unknown) => e);
      const name = await sallocOf();
      await pollUntil(() => actorsHosted(other), (n) => n === 1, 'its actor hosted while salloc says nothing');
      await other.shutdown();
      const error = await waiting;
      assert.ok(isShumaError(error) && error.code === 'RUNTIME_CLOSED', String(error));
      assert.deepEqual(processesMentioning(name), [], 'its salloc is gone');
    } finally {
      await other.shutdown();
    }
  });

  test('a salloc ended from outside while it waits fails the create with PLACEMENT_FAILED: no job queued, no half-made workspace', async () => {
    const release = await holdNodes();
    try {
      const actors = await actorsHosted(rt);
      const outcome = rt.createWorkspace({ label: 'salloc-killed', ...waiting }).then(() => null, (e: unknown) => e);
      const name = await pendingJob();
      const sallocs = processesMentioning(`--job-name=${name}`);
      assert.equal(sallocs.length, 1, 'one salloc asks for it');
      process.kill(sallocs[0]!, 'SIGKILL');
      const error = await outcome;
      assert.ok(isShumaError(error) && error.code === 'PLACEMENT_FAILED' && /SIGKILL/.test(error.message), String(error));
      assert.ok(!(await jobsListed()).some((j) => j.endsWith(` ${name}`)), 'what salloc had queued was cancelled');
      assert.equal(await actorsHosted(rt), actors, 'its actor was let go');
      assert.ok(!(await rt.listWorkspaces()).some((w) => w.label === 'salloc-killed'));
      assert.equal(coreOf(rt).registry.get(name.slice('shuma-'.length)), undefined);
    } finally {
      await release();
    }
  });

  test("a worker thread lost while the allocation waits: the workspace's actor is hosted again, and the create completes once Slurm grants it", async () => {
    const release = await holdNodes();
    const other = await createRuntime({ workers: 1, slurm: { conf: tc.conf, allocationWaitMs: 60_000 } });
    try {
      const creating = other.createWorkspace({ label: 'rehosted', ...waiting });
      const id = (await pendingJob()).slice('shuma-'.length);
      await pollUntil(() => coreOf(other).registry.get(id)?.persisted ?? null, (persisted) => persisted !== null, 'its first snapshot');
      await (coreOf(other).workerThreads[0] as { terminate(): Promise<number> }).terminate();
      await pollUntil(() => other.health(), (h) => h.workerRestarts === 1, 'the worker replaced');
      await release();
      const ws = await creating;
      assert.deepEqual(ws.placement.kind === 'slurm' && ws.placement.nodes, ['n1', 'n2']);
      const c = await ws.run({ exec: 'echo', argv: ['here'], node: 'n1' });
      assert.deepEqual(await c.exited, { code: 0, signal: null, status: 0 });
      assert.equal((await ws.logs(c.id)).toString(), 'here\n');
      await ws.stop();
      assert.ok(!(await jobsListed()).some((j) => j.endsWith(` shuma-${id}`)));
    } finally {
      await other.shutdown();
      await release();
    }
  });

  test('run() in a workspace still waiting for its allocation fails at once saying so (WORKSPACE_STARTING, still being placed); nothing of it is left, and runs work once granted', async () => {
    const release = await holdNodes();
    try {
      const creating = rt.createWorkspace({ label: 'placing-run', ...waiting });
      const id = (await pendingJob()).slice('shuma-'.length);
      const ws = rt.workspace(id);
      assert.ok(ws, 'a placing workspace is found by id');
      // Its actor runs on its worker while salloc waits: the run reaches the placement unless refused first.
      await pollUntil(async () => coreOf(rt).registry.get(id)?.started.settled ?? false, (settled) => settled, 'its actor running');
      await assert.rejects(ws.run({ exec: 'true', node: 'n1' }), (e: unknown) => isShumaError(e) && e.code === 'WORKSPACE_STARTING' && /still being placed/.test(e.message) && /createWorkspace\(\)/.test(e.message));
      await assert.rejects(rt.runPipeline({ label: 'p', workspace: id, nodes: [{ label: 'a', exec: 'true' }], edges: [] }), (e: unknown) => isShumaError(e) && /still being placed/.test(e.message));
      await release();
      const placed = await creating;
      assert.deepEqual(await placed.commands(), [], 'the refused run left no command');
      const c = await placed.run({ exec: 'echo', argv: ['granted'], node: 'n1' });
      assert.equal((await c.exited).code, 0);
      assert.equal((await placed.logs(c.id)).toString(), 'granted\n');
      await placed.stop();
    } finally {
      await release();
    }
  });

  test('a runtime SIGKILLed while salloc waits leaves its request queued; the next runtime on its stateDir cancels it, and keeps nothing else of it', async () => {
    const release = await holdNodes();
    const state = mkdtempSync(path.join(tmpdir(), 'shuma-slurm-placing-'));
    let next: Runtime | undefined;
    let releaseChild = () => undefined as void;
    try {
      const started = startChildRuntime(path.join(path.dirname(fileURLToPath(import.meta.url)), 'slurm-placing-crash-child.js'), [state, tc.conf], state);
      const { child } = started;
      releaseChild = started.release;
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`placing crash child exited early (${code})`)));
      });
      const name = await pendingJob();
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      assert.ok((await jobsListed()).some((j) => j.endsWith(` ${name}`)), 'the dead runtime left its request queued');
      next = await createRuntime({ workers: 1, stateDir: state, statsIntervalMs: 0, slurm: { conf: tc.conf } });
      await pollUntil(jobsListed, (jobs) => !jobs.some((j) => j.endsWith(` ${name}`)), 'the orphaned request cancelled', 50);
      await pollUntil(async () => next!.warnings, (w) => w.some((m) => /cancelled/.test(m) && m.includes(name)), 'a warning naming it', 20);
      await pollUntil(async () => processesMentioning(`--job-name=${name}`), (p) => p.length === 0, 'its salloc gone', 50);
      assert.deepEqual(await next.listWorkspaces(), []);
      // The next runtime's own requests are its own: not cancelled as orphans.
      await release();
      const ws = await next.createWorkspace({ label: 'after', ...waiting });
      assert.equal((await next.listWorkspaces()).length, 1);
      await ws.stop();
    } finally {
      await next?.shutdown();
      await release();
      rmSync(state, { recursive: true, force: true });
      releaseChild();
    }
  });

  test('a restarted runtime finds its job by id: running, the workspace is kept and its command runs again in it; gone, a warning', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'shuma-slurm-state-'));
    const marker = `shuma-slurm-crash-${process.pid}`;
    const { child, release } = startChildRuntime(path.join(path.dirname(fileURLToPath(import.meta.url)), 'slurm-crash-child.js'), [dir, tc.conf, marker], dir);
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString()));
      child.once('exit', (code) => reject(new Error(`crash child exited early (${code})`)));
    });
    const [, wsId, jobId] = line.trim().split(' ');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const again = await createRuntime({ workers: 1, stateDir: dir, statsIntervalMs: 0, slurm: { conf: tc.conf } });
    let ws: Workspace | undefined;
    try {
      ws = again.workspace(wsId!);
      assert.ok(ws, `restored: ${again.warnings.join('; ')}`);
      assert.deepEqual(ws.placement, { kind: 'slurm', jobId, nodes: ['n1', 'n2'] });
      // Restored from a snapshot whose actor knows the command (slurm-crash-child.ts): it runs again in the same job.
      const running = await waitFor<Awaited<ReturnType<Workspace['commands']>>>(
        (observer) => {
          const timer = setInterval(() => void ws!.commands().then(observer), 50);
          return () => clearInterval(timer);
        },
        (cs) => cs.some((c) => c.alive),
        'the command running again',
        60_000,
      );
      const live = running.find((c) => c.alive)!;
      await waitForOutput(ws, live.id, 'up on n2');
    } finally {
      await again.shutdown();
    }
    await jobGone(jobId!);
    await pollUntil(() => processesMentioning(marker), (p) => p.length === 0, 'no step process left', 50);

    // The same snapshot, its job cancelled meanwhile: a warning, the workspace restored as stopped.
    const { child: child2, release: release2 } = startChildRuntime(path.join(path.dirname(fileURLToPath(import.meta.url)), 'slurm-crash-child.js'), [dir, tc.conf, marker], dir);
    const line2 = await new Promise<string>((resolve) => child2.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString())));
    const [, wsId2, jobId2] = line2.trim().split(' ');
    const exited2 = new Promise((resolve) => child2.once('exit', resolve));
    child2.kill('SIGKILL');
    await exited2;
    await runSlurm({ conf: tc.conf }, 'scancel', [jobId2!]);
    await jobGone(jobId2!);
    const third = await createRuntime({ workers: 1, stateDir: dir, statsIntervalMs: 0, slurm: { conf: tc.conf } });
    try {
      assert.equal(third.workspace(wsId2!), undefined);
      assert.ok(third.warnings.some((w) => w.includes(jobId2!) && /gone/.test(w) && /restored as stopped/.test(w)), third.warnings.join('; '));
    } finally {
      await third.shutdown();
    }
    await pollUntil(() => processesMentioning(marker), (p) => p.length === 0, 'no step process left', 50);
    release();
    release2();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a spec file places a workspace with placement: and its commands with node:', async () => {
    const file = parseSpecText(
      'train.yaml',
      ['workspaces:', '  - label: from-file', '    placement: { kind: slurm, nodes: 2 }', '    commands:', '      - { exec: hostname, node: n2, label: where }', ''].join('\n'),
    );
    const [entry] = file.workspaces;
    assert.deepEqual(entry!.spec.placement, { kind: 'slurm', nodes: 2 });
    const ws = await rt.createWorkspace(entry!.spec);
    const c = await ws.run(entry!.commands[0]!);
    await c.exited;
    assert.equal((await ws.commands())[0]!.node, 'n2');
    await ws.stop();
    assert.throws(
      () => parseSpecText('bad.yaml', 'workspaces:\n  - label: x\n    placement: { kind: slurm, nodes: 0 }\n'),
      (e: unknown) => /bad\.yaml:3:\d+: .*placement\.nodes|must be at least 1/.test(String(e)),
    );
  });

  test('shuma run --slurm-nodes N asks for a Slurm-placed workspace; ps shows each command\'s node', () => {
    assert.deepEqual(commandSpecFrom(['-w', 'train', '--slurm-nodes', '2', '--', 'true']).placement, { kind: 'slurm', nodes: 2 });
    assert.equal(commandSpecFrom(['-w', 'train', '--', 'true']).placement, undefined);
    const row = { id: 'r1', commandKey: 'k', label: 'c', state: 'running', pid: 1, alive: true, exitStatus: null, exitSignal: null, restarts: 0, startedAt: 0, logBytes: 0 };
    const text = psText({ workspaces: [{ id: 'w', label: 'w', state: 'running', uptimeMs: 0, commands: [{ ...row, node: 'n2' }] }], pipelines: [] } as never, 0);
    assert.match(text, /NODE/);
    assert.match(text, /n2\s*$/m);
    const local = psText({ workspaces: [{ id: 'w', label: 'w', state: 'running', uptimeMs: 0, commands: [row] }], pipelines: [] } as never, 0);
    assert.doesNotMatch(local, /NODE/);
  });

  test('stopCommand and restartCommand act on one step; the workspace and its other command go on', async () => {
    const ws = await slurmWs('one-at-a-time');
    const a = await ws.run({ exec: fixture('stop-order.sh'), argv: ['a', path.join(dir, 'one-at-a-time.log')], label: 'a', node: 'n1', restart: { onFailure: true, backoffMs: 1 } });
    const b = await ws.run({ exec: fixture('forever.sh'), label: 'b', node: 'n2' });
    await waitForOutput(ws, a.id, 'ready');
    await waitForOutput(ws, b.id, 'ready');
    // The SIGTERM reaches the program on its node (its trap runs), not only the local srun.
    assert.deepEqual(await ws.stopCommand('a', { graceMs: 10_000 }), { reaped: 1 });
    assert.deepEqual(await a.exited, { code: 0, signal: null, status: 0 });
    assert.equal(stateOf(a.getSnapshot()), 'stopped', 'a stopped command is not relaunched');
    const again = await ws.restartCommand('b');
    assert.notEqual(again.id, b.id);
    assert.equal((await b.exited).signal, 'SIGTERM');
    await waitForOutput(ws, again.id, 'ready');
    const runs = await ws.commands();
    assert.deepEqual(runs.filter((r) => r.alive).map((r) => [r.label, r.node]), [['b', 'n2']]);
    assert.equal(runs.filter((r) => r.label === 'a').length, 1, 'no relaunch of a');
    assert.equal(stateOf(ws.getSnapshot()), 'running');
    const jobId = ws.placement.kind === 'slurm' ? ws.placement.jobId : '';
    await ws.stop();
    await jobGone(jobId);
  });

  test('restarting at once (backoff 0), a failing command relaunches on its exit, each run a step; stopped alone, it is not relaunched', async () => {
    const ws = await slurmWs('at-once');
    const jobId = ws.placement.kind === 'slurm' ? ws.placement.jobId : '';
    const at0 = { onFailure: true, backoffMs: 0, maxBackoffMs: 0 };
    await ws.run({ exec: 'false', label: 'fails', node: 'n2', restart: { ...at0, maxRestarts: 3 } });
    const final = await pollUntil(
      () => ws.commands(),
      (cs) => cs.some((x) => x.label === 'fails' && x.restarts === 3 && !x.alive),
      'the fourth run of fails ended',
      50,
    );
    assert.ok(final.filter((x) => x.label === 'fails').every((x) => x.exitStatus === 1 && x.node === 'n2'));
    // Its exit after the stop's SIGTERM is a failure (3): only the stop keeps it from relaunching,
    // so the standing order of its run must be revoked before the step is signalled.
    const svc = await ws.run({ exec: 'sh', argv: ['-c', 'trap "exit 3" TERM; echo ready; while :; do sleep 0.1; done'], label: 'svc', node: 'n1', restart: at0 });
    await waitForOutput(ws, svc.id, 'ready');
    assert.deepEqual(await ws.stopCommand('svc', { graceMs: 10_000 }), { reaped: 1 });
    assert.deepEqual(await svc.exited, { code: 3, signal: null, status: 3 });
    assert.equal(stateOf(svc.getSnapshot()), 'stopped');
    // A relaunch on an unrevoked order would be spawned at svc's exit, ahead of this later run.
    const later = await ws.run({ exec: 'true', label: 'later', node: 'n1' });
    await later.exited;
    const runs = await ws.commands();
    assert.deepEqual(runs.filter((r) => r.label === 'svc').map((r) => r.id), [svc.id], 'no relaunch of svc, not even one started ahead and killed');
    await ws.stop();
    await jobGone(jobId);
  });

  test('a stop ends dependants first, step by step across nodes: worker, then api, then db', async () => {
    const ws = await slurmWs('stop-waves');
    const log = path.join(dir, 'stop-waves.log');
    const db = await ws.run({ exec: fixture('stop-order.sh'), argv: ['db', log], label: 'db', node: 'n1' });
    const api = await ws.run({ exec: fixture('stop-order.sh'), argv: ['api', log], label: 'api', node: 'n2', dependsOn: [{ label: 'db' }] });
    const worker = await ws.run({ exec: fixture('stop-order.sh'), argv: ['worker', log], label: 'worker', node: 'n1', dependsOn: [{ label: 'api' }, { label: 'db' }] });
    for (const cmd of [db, api, worker]) await waitForOutput(ws, cmd.id, 'ready');
    const jobId = ws.placement.kind === 'slurm' ? ws.placement.jobId : '';
    await ws.stop({ graceMs: 20_000 });
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), ['worker', 'api', 'db']);
    await jobGone(jobId);
  });

  test("a pipeline's discern 'last' across nodes: an upstream failure does not fail it; 'any' does", async () => {
    const ws = await slurmWs('discern');
    const spec = (discern: 'any' | 'last') => ({
      label: `fail-count-${discern}`,
      workspace: ws.id,
      discern,
      nodes: [
        { label: 'gen', exec: 'sh', argv: ['-c', 'seq 1 1000; exit 3'], node: 'n1' },
        { label: 'count', exec: 'wc', argv: ['-l'], node: 'n2' },
      ],
      edges: [{ from: 'gen', to: 'count' }],
    });
    const any = await (await rt.runPipeline(spec('any'))).done;
    assert.equal(any.ok, false);
    assert.equal(any.exits.gen?.status, 3);
    const last = await rt.runPipeline(spec('last'));
    const result = await last.done;
    assert.equal(result.ok, true);
    assert.equal(result.state, 'succeeded');
    assert.equal(result.exits.gen?.status, 3);
    assert.equal((await ws.logs(last.nodes[1]!.commandId)).toString().trim(), '1000');
    const jobId = ws.placement.kind === 'slurm' ? ws.placement.jobId : '';
    await ws.stop();
    await jobGone(jobId);
  });

  test('a quota kill stops the Slurm workspace and leaves no job and no step behind', async () => {
    const marker = `shuma-quota-${process.pid}`;
    const ws = await slurmWs('quota-kill', { limits: { nproc: 1 }, quota: { nproc: 'kill' } });
    const jobId = ws.placement.kind === 'slurm' ? ws.placement.jobId : '';
    const a = await ws.run({ exec: 'sh', argv: ['-c', `echo ready; exec sleep 600 # ${marker}`], node: 'n1' });
    const b = await ws.run({ exec: 'sh', argv: ['-c', `echo ready; exec sleep 600 # ${marker}`], node: 'n2' });
    await waitForOutput(ws, a.id, 'ready');
    await waitForOutput(ws, b.id, 'ready');
    const stopped = waitFor(ws.subscribe.bind(ws), (s) => stateOf(s) === 'stopped', 'the quota stop');
    await ws.stats();
    await stopped;
    await jobGone(jobId);
    await pollUntil(() => processesMentioning(marker), (pids) => pids.length === 0, 'no step process left', 100);
  });

  test('readiness notify: READY=1 from a step on a node makes the command ready', async () => {
    const ws = await slurmWs('notify');
    const gate = path.join(dir, 'notify-gate');
    const cmd = await ws.run({ exec: fixture('notify-ready.sh'), argv: [gate], ready: { notify: true }, node: 'n2' });
    const until = (wanted: string) =>
      stateOf(cmd.getSnapshot()) === wanted ? Promise.resolve(cmd.getSnapshot()!) : waitFor(cmd.subscribe.bind(cmd), (s) => stateOf(s) === wanted, `notify in ${wanted}`);
    await until('up');
    writeFileSync(gate, '');
    const ready = await until('running');
    assert.match(String(ready.context.probeDetail), /READY=1/);
    const jobId = ws.placement.kind === 'slurm' ? ws.placement.jobId : '';
    await ws.stop();
    await jobGone(jobId);
  });

  test('the inspector says where a command runs: its Slurm node, beside its output', async () => {
    const seen = await startRuntime({ slurm: { conf: tc.conf, allocationWaitMs: 20_000 }, statsIntervalMs: 0, inspector: { port: 0 } });
    const ws = await seen.createWorkspace({ label: 'seen', placement: { kind: 'slurm', nodes: 2 } });
    const c = await ws.run({ exec: 'sh', argv: ['-c', 'echo here; exec sleep 600'], node: 'n2' });
    await waitForOutput(ws, c.id, 'here');
    const socket = new WebSocket(`${seen.inspectorUrl!.replace(/^http/, 'ws')}ws`);
    const details: Array<{ id: string; output?: Array<{ label: string; node?: string; stdout: string }> }> = [];
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as (typeof details)[number] & { type: string };
      if (message.type === 'detail') details.push(message);
    });
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    socket.send(JSON.stringify({ type: 'select', id: c.commandKey }));
    const detail = await pollUntil(() => details.find((m) => m.id === c.commandKey && (m.output?.length ?? 0) > 0), (m) => m !== undefined, 'the command in the inspector');
    assert.equal(detail!.output![0]!.node, 'n2');
    assert.equal(detail!.output![0]!.stdout, 'here\n');
    socket.close();
    const jobId = ws.placement.kind === 'slurm' ? ws.placement.jobId : '';
    await ws.stop({ graceMs: 0 });
    await jobGone(jobId);
    await seen.shutdown();
  });

  // Last: it takes node n2 away from this file's cluster.
  test("a node lost under a supervised command: its run ends with reason node-lost and the restart lands on the live node", async () => {
    const ws = await slurmWs('survivor');
    const c = await ws.run({ exec: 'sh', argv: ['-c', 'echo "up on $SLURMD_NODENAME"; exec sleep 600'], node: 'n2', restart: { onFailure: true, backoffMs: 50 } });
    await waitForOutput(ws, c.id, 'up on n2');
    process.kill(await tc.pidOf('slurmd-n2'), 'SIGKILL');
    const exit = await c.exited;
    assert.equal(exit.signal, 'SIGKILL');
    const runs = await pollUntil(() => ws.commands(), (cs) => cs.length === 2 && cs[1]!.alive, 'the relaunch', 100);
    assert.equal(runs[0]!.reason, 'node-lost');
    assert.equal(runs[0]!.node, 'n2');
    assert.equal(runs[1]!.node, 'n1');
    await waitForOutput(ws, runs[1]!.id, 'up on n1');
    assert.deepEqual(ws.placement.kind === 'slurm' && ws.placement.nodes, ['n1']);
    const jobId = ws.placement.kind === 'slurm' ? ws.placement.jobId : '';
    await ws.stop();
    await jobGone(jobId);
  });
});
