import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { FINISHED_KEPT } from '../src/host/persistence/finished.js';
import { createRuntime } from '../src/index.js';
import { pollUntil } from './helpers.js';

// What ended is still listed after a restart of the runtime on the same stateDir: finished
// commands with their exits and why trails, finished pipelines with their result; bounded.

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function stateDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'shuma-history-'));
  dirs.push(dir);
  return path.join(dir, 'state');
}

test('finished commands and pipelines come back after a restart: exits, results, why trails, logs; restart runs one again', async () => {
  const dir = stateDir();
  const rt1 = await createRuntime({ stateDir: dir, workers: 1 });
  const ws = await rt1.createWorkspace({ label: 'h' });
  const once = await ws.run({ label: 'once', exec: 'sh', argv: ['-c', 'echo said-once; exit 3'] });
  assert.equal((await once.exited).status, 3);
  const pipe = await rt1.runPipeline({
    label: 'count',
    workspace: ws.id,
    nodes: [{ label: 'seq', exec: 'seq', argv: ['1', '5'] }, { label: 'wc', exec: 'wc', argv: ['-l'] }],
    edges: [{ from: 'seq', to: 'wc' }],
  });
  const result = await pipe.done;
  assert.equal(result.ok, true);
  const whyBefore = await pollUntil(() => ws.why(once.id), (trail) => trail.some((e) => e.text === 'exited 3'), 'the trail of once');
  const pipeWhy = await rt1.pipeline(pipe.id)!.why();
  await rt1.shutdown({ graceMs: 0 });

  const rt2 = await createRuntime({ stateDir: dir, workers: 1 });
  try {
    const ws2 = rt2.workspace(ws.id)!;
    const runs = await ws2.commands();
    const again = runs.find((c) => c.label === 'once');
    assert.ok(again, 'the finished command is listed');
    assert.equal(again.id, once.id);
    assert.equal(again.exitStatus, 3);
    assert.equal(again.alive, false);
    const d = await ws2.describe('once');
    assert.equal(d.state, 'exited');
    assert.deepEqual(d.runs.map((r) => r.exit?.status), [3]);
    assert.deepEqual(await ws2.why(once.id), whyBefore, 'its trail, by its run id');
    assert.equal((await ws2.logs('once')).toString(), 'said-once\n', 'its output, from its log file');
    const p2 = rt2.pipeline(pipe.id);
    assert.ok(p2, 'the finished pipeline is listed');
    const result2 = await p2.done;
    assert.equal(result2.ok, true);
    assert.equal(result2.state, 'succeeded');
    assert.deepEqual(Object.keys(result2.exits).sort(), ['seq', 'wc']);
    assert.deepEqual(await p2.why(), pipeWhy);
    assert.deepEqual((await ws2.commands()).filter((c) => c.pipelineId === pipe.id).map((c) => c.exitStatus), [0, 0]);
    // A restored finished command runs again on request, its count going on.
    const rerun = await ws2.restartCommand('once');
    assert.equal((await rerun.exited).status, 3);
    assert.equal((await ws2.describe('once')).runs.length, 2);
  } finally {
    await rt2.shutdown({ graceMs: 0 });
  }
});

test(`bounded: the newest ${FINISHED_KEPT} finished commands of a workspace are kept (their runs and trails with them)`, async () => {
  const dir = stateDir();
  const rt1 = await createRuntime({ stateDir: dir, workers: 1 });
  const ws = await rt1.createWorkspace({ label: 'many' });
  const total = FINISHED_KEPT + 5;
  for (let i = 0; i < total; i++) await (await ws.run({ label: `job${i}`, exec: 'true' })).exited;
  await pollUntil(() => ws.describe(`job${total - 1}`), (d) => d.state === 'exited', 'the last job seen exited');
  await rt1.shutdown({ graceMs: 0 });
  const rt2 = await createRuntime({ stateDir: dir, workers: 1 });
  try {
    const labels = (await rt2.workspace(ws.id)!.commands()).map((c) => c.label);
    assert.equal(labels.length, FINISHED_KEPT);
    assert.equal(labels[0], 'job5', 'the oldest went first');
    assert.equal(labels.at(-1), `job${total - 1}`);
    await assert.rejects(rt2.workspace(ws.id)!.why('job0'), /COMMAND_NOT_FOUND/);
  } finally {
    await rt2.shutdown({ graceMs: 0 });
  }
});

test('the node runs a shutdown ends are in the history after it, as a command\'s are: listed with their exits, their output readable', async () => {
  const dir = stateDir();
  const rt1 = await createRuntime({ stateDir: dir, workers: 1 });
  const ws = await rt1.createWorkspace({ label: 'ended-by-shutdown' });
  const pipe = await rt1.runPipeline({
    label: 'endless',
    workspace: ws.id,
    nodes: [{ label: 'talk', exec: 'sh', argv: ['-c', 'echo talking; exec sleep 1000'] }, { label: 'listen', exec: 'sh', argv: ['-c', 'echo listening >&2; exec cat'] }],
    edges: [{ from: 'talk', to: 'listen' }],
  });
  const solo = await ws.run({ label: 'solo', exec: 'sleep', argv: ['1000'] });
  const nodes = pipe.nodes.map((node) => node.commandId).sort();
  const listener = pipe.nodes.find((n) => n.label === 'listen')!.commandId;
  await pollUntil(() => ws.logs(listener, { stream: 'stderr' }), (out) => out.toString() === 'listening\n', 'the listener said so');
  await rt1.shutdown({ graceMs: 0 });

  const rt2 = await createRuntime({ stateDir: dir, workers: 1 });
  try {
    const listed = await rt2.workspace(ws.id)!.commands();
    const ofPipe = listed.filter((c) => c.pipelineId === pipe.id);
    assert.deepEqual(ofPipe.map((c) => c.id).sort(), nodes, 'every node run the shutdown ended is listed');
    assert.ok(ofPipe.every((c) => !c.alive && c.exitStatus !== null), `each with its exit: ${JSON.stringify(ofPipe.map((c) => c.exitStatus))}`);
    assert.equal(ofPipe.find((c) => c.label === 'talk')?.exitSignal, 'SIGKILL', 'the exit the stop gave it');
    const soloRow = listed.find((c) => c.id === solo.id);
    assert.equal(soloRow?.exitSignal, 'SIGKILL', 'as a command\'s run is');
    const listen = ofPipe.find((c) => c.label === 'listen')!;
    assert.equal((await rt2.workspace(ws.id)!.logs(listen.id, { stream: 'stderr' })).toString(), 'listening\n', 'its output, from its log file');
  } finally {
    await rt2.shutdown({ graceMs: 0 });
  }
});
