// Strategies on a pipeline graph, with real processes over real pipes: rest_for_one restarts a
// failed node and everything downstream while upstream nodes run on (tapped: the runtime holds
// each node's stdin and splices the new node in); untapped it acts as one_for_all and says so.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ActorSnapshot, Pipeline, Runtime, Workspace } from '../src/index.js';
import { pipelineModelPaths } from '../src/testing/index.js';
import { isAlive, pollUntil, startRuntime, waitFor, stateOf as state } from './helpers.js';

const pidOf = (pipeline: Pipeline, label: string) => pipeline.nodes.find((n) => n.label === label)!.pid;
const runOf = (pipeline: Pipeline, label: string) => pipeline.nodes.find((n) => n.label === label)!.commandId;

/** An endless, slow counter: 1, 2, 3… one line every 10 ms; SIGPIPE ends it when nobody reads. */
const counter = { label: 'src', exec: 'sh', argv: ['-c', 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.01; done'] };
/** Prefixes each line; a line-at-a-time reader (dash's read takes one byte at a time). */
const prefix = (label: string, tag: string) => ({ label, exec: 'sh', argv: ['-c', `while read -r l; do echo "${tag} $l"; done`] });
const chain = [{ from: 'src', to: 'mid' }, { from: 'mid', to: 'sink' }];

async function restarted(pipeline: Pipeline, restarts: number): Promise<ActorSnapshot> {
  return waitFor(pipeline.subscribe.bind(pipeline), (s) => state(s) === 'running' && Number(s.context.restarts) === restarts, `restart ${restarts} running`);
}

describe('pipeline strategies', () => {
  let rt: Runtime;
  let ws: Workspace;
  before(async () => {
    rt = await startRuntime({ statsIntervalMs: 0 });
    ws = await rt.createWorkspace({ label: 'strategies' });
  });
  after(async () => {
    await ws.stop({ graceMs: 0 });
  });

  test('rest_for_one, tapped: mid killed → mid and sink restart, src runs on (same process), data flows again through the splice', async () => {
    const pipeline = await rt.runPipeline({
      label: 'counted', workspace: ws.id, tap: true,
      nodes: [counter, prefix('mid', 'm'), prefix('sink', 's')], edges: chain,
      restart: { onFailure: true, backoffMs: 0 }, supervision: { strategy: 'rest_for_one' },
    });
    const src = pidOf(pipeline, 'src');
    const [mid, sink, sinkRun] = [pidOf(pipeline, 'mid'), pidOf(pipeline, 'sink'), runOf(pipeline, 'sink')];
    const before = await pollUntil(() => ws.logs(sinkRun), (b) => /^s m \d+$/m.test(b.toString()), 'the sink to print');
    const seen = Number(before.toString().trim().split('\n').at(-1)!.split(' ')[2]);
    const running = restarted(pipeline, 1);
    process.kill(mid, 'SIGKILL');
    await running;
    assert.equal(pidOf(pipeline, 'src'), src, 'src is the same process');
    assert.ok(isAlive(src), 'src runs on');
    assert.notEqual(pidOf(pipeline, 'mid'), mid);
    assert.notEqual(pidOf(pipeline, 'sink'), sink);
    assert.ok(!isAlive(sink), 'the old sink was ended');
    // The new sink reads what src writes after the splice: numbers past those seen before. Its
    // first line may be the rest of a line the killed mid had begun to read (the splice is
    // byte-exact, not line-aware: '13' read as far as '1' leaves '3'), so it is not counted.
    const after = await pollUntil(() => ws.logs(runOf(pipeline, 'sink')), (b) => b.toString().split('\n').length > 3, 'the new sink to print');
    const lines = after.toString().split('\n').slice(1, -1);
    for (const line of lines) assert.match(line, /^s m \d+$/);
    const numbers = lines.map((line) => Number(line.split(' ')[2]));
    assert.ok(numbers[0]! > seen, `${after.toString()} continues past ${seen}`);
    assert.deepEqual(numbers, numbers.map((_, i) => numbers[0]! + i), 'nothing lost after the splice');
    const trail = (await ws.why(pipeline.id)).map((e) => e.text);
    assert.ok(trail.includes("'mid' failed (killed by SIGKILL): restarting mid, sink; src runs on (rest_for_one)"), trail.join(' | '));
    assert.ok(trail.some((t) => /^restart 1: .*spliced back in/.test(t)), trail.join(' | '));
    await pipeline.stop({ graceMs: 0 });
    assert.ok(!isAlive(src));
  });

  test('at the splice, what the failed node had not read is read by the new one; what it had read is gone', async () => {
    // src writes four lines at once and sleeps; mid reads one line, says it, and waits.
    const pipeline = await rt.runPipeline({
      label: 'splice', workspace: ws.id, tap: true,
      nodes: [
        { label: 'src', exec: 'sh', argv: ['-c', 'printf "1\\n2\\n3\\n4\\n"; exec sleep 1000'] },
        { label: 'mid', exec: 'sh', argv: ['-c', 'read -r l; echo "got $l"; exec sleep 1000'] },
        { label: 'sink', exec: 'cat' },
      ],
      edges: chain,
      restart: { onFailure: true, backoffMs: 0 }, supervision: { strategy: 'rest_for_one' },
    });
    await pollUntil(() => ws.logs(runOf(pipeline, 'sink')), (b) => b.toString() === 'got 1\n', 'the first line through');
    const running = restarted(pipeline, 1);
    process.kill(pidOf(pipeline, 'mid'), 'SIGKILL');
    await running;
    await pollUntil(() => ws.logs(runOf(pipeline, 'sink')), (b) => b.toString() === 'got 2\n', 'line 2, left in the held pipe, read by the new mid');
    const running2 = restarted(pipeline, 2);
    process.kill(pidOf(pipeline, 'mid'), 'SIGKILL');
    await running2;
    await pollUntil(() => ws.logs(runOf(pipeline, 'sink')), (b) => b.toString() === 'got 3\n', 'line 3 after a second splice');
    await pipeline.stop({ graceMs: 0 });
  });

  test('rest_for_one, tapped: a node that ends for good lets go of its stdin, its writer ends by SIGPIPE (counter | head -n 2)', async () => {
    const pipeline = await rt.runPipeline({
      label: 'head', workspace: ws.id, tap: true,
      nodes: [counter, { label: 'head', exec: 'head', argv: ['-n', '2'] }], edges: [{ from: 'src', to: 'head' }],
      restart: { onFailure: true, backoffMs: 0 }, supervision: { strategy: 'rest_for_one' },
    });
    const result = await pipeline.done;
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.exits.src!.signal, 'SIGPIPE');
    assert.equal(result.restarts, 0);
  });

  test('rest_for_one past maxRestarts: no splice; the failed node lets go of its input, the pipeline ends and gives up', async () => {
    const pipeline = await rt.runPipeline({
      label: 'limited', workspace: ws.id, tap: true,
      nodes: [counter, prefix('mid', 'm'), prefix('sink', 's')], edges: chain,
      restart: { onFailure: true, backoffMs: 0, maxRestarts: 1 }, supervision: { strategy: 'rest_for_one' },
    });
    const running = restarted(pipeline, 1);
    process.kill(pidOf(pipeline, 'mid'), 'SIGKILL');
    await running;
    const src = pidOf(pipeline, 'src');
    process.kill(pidOf(pipeline, 'mid'), 'SIGKILL');
    const result = await pipeline.done;
    assert.equal(result.ok, false);
    assert.equal(state(pipeline.getSnapshot()), 'gaveUp');
    assert.equal(result.restarts, 1);
    assert.equal(result.exits.src!.signal, 'SIGPIPE', 'src saw the end of its reader');
    assert.ok(!isAlive(src));
  });

  test('rest_for_one without tap acts as one_for_all: the whole pipeline restarts once every node ended; why() says so', async () => {
    const pipeline = await rt.runPipeline({
      label: 'untapped', workspace: ws.id,
      nodes: [counter, prefix('mid', 'm'), { label: 'sink', exec: 'sh', argv: ['-c', 'exec cat > /dev/null'] }], edges: chain,
      restart: { onFailure: true, backoffMs: 0 }, supervision: { strategy: 'rest_for_one' },
    });
    const first = pipeline.nodes.map((n) => n.pid);
    const running = restarted(pipeline, 1);
    process.kill(pidOf(pipeline, 'mid'), 'SIGKILL');
    await running;
    for (const [i, node] of pipeline.nodes.entries()) assert.notEqual(node.pid, first[i], `${node.label} is a new process`);
    const trail = (await ws.why(pipeline.id)).map((e) => e.text);
    assert.ok(trail.includes('rest_for_one acts as one_for_all: without tap: true the edges are kernel pipes between the nodes, and a node that ends takes its pipes with it'), trail.join(' | '));
    await pipeline.stop({ graceMs: 0 });
  });

  test("one_for_one on a pipeline, or an unknown strategy, is INVALID_SPEC; nothing starts", async () => {
    const spec = { label: 'bad', workspace: ws.id, nodes: [{ label: 'a', exec: 'true' }], edges: [] };
    await assert.rejects(rt.runPipeline({ ...spec, supervision: { strategy: 'one_for_one' as never } }), /supervision\.strategy 'one_for_one' cannot apply to a pipeline/);
    await assert.rejects(rt.runPipeline({ ...spec, supervision: { strategy: 'all' as never } }), /supervision\.strategy must be one of 'one_for_all', 'rest_for_one'/);
    await assert.rejects(rt.runPipeline({ ...spec, supervision: { strategy: 'rest_for_one', intensity: {} } as never }), /supervision\.intensity is not a known field/);
    assert.deepEqual((await ws.commands()).filter((c) => c.label === 'a'), []);
  });

  test("shuma/testing's pipeline model refuses a spec it cannot predict (a tapped rest_for_one), and takes an untapped one", () => {
    const spec = { label: 'm', workspace: ws.id, nodes: [counter, prefix('mid', 'm')], edges: [{ from: 'src', to: 'mid' }], supervision: { strategy: 'rest_for_one' as const } };
    assert.throws(() => pipelineModelPaths({ ...spec, tap: true }), /the pipeline model knows one_for_all only/);
    assert.ok(pipelineModelPaths(spec, { maxPaths: 2 }).length > 0);
  });
});
