// With the native spawner, a tapped edge is pumped by a thread of the addon's
// (native/flow-pump.c), so its writer never wakes the runtime's loop, and its flow-socket readers
// are fed by another (native/flow-fanout.c), so their copy never enters JavaScript. These tests
// hold the threads to their bounds: one per edge, at most 32 in the process (beyond, an edge is
// pumped on the loop), none left once the edge ended, and an edge a flow reader attaches to
// keeps its thread without losing a byte of the edge.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { loadSpawnerAddon } from '../src/host/spawn/native-addon.js';
import { attach, bash, endlessChain, flowOf, gated, logsOf, makeGate, setup, until } from './flow-helpers.js';
import { isAlive } from './helpers.js';

const fds = () => readdirSync('/proc/self/fd').length;
const tasks = () => readdirSync('/proc/self/task').length;

const addon = (() => {
  if (process.env.SHUMA_SPAWNER === 'node') return null;
  try {
    return loadSpawnerAddon();
  } catch {
    return null;
  }
})();
const skip =
  process.env.SHUMA_SPAWNER === 'node'
    ? 'SHUMA_SPAWNER=node: the edges are pumped in JavaScript, with no thread of their own'
    : !addon
      ? 'the native spawner does not load here'
      : !addon.pumpThreads
        ? 'the addon was built before its pump threads (npm run install)'
        : false;
const pumpThreads = () => addon!.pumpThreads!();

/** SCHED_OTHER and SCHED_BATCH, as /proc's stat gives a task's policy (its 41st field). */
const SCHED_OTHER = 0;
const SCHED_BATCH = 3;

/** A task's name and scheduling policy; null once it is gone. */
function taskOf(stat: string): { name: string; policy: number } | null {
  try {
    const text = readFileSync(stat, 'latin1');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { name: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')), policy: Number(fields[41 - 3]) };
  } catch {
    return null;
  }
}

/** This process's threads by name, each with its policy. */
function threadsNamed(name: string): number[] {
  const policies: number[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    const task = taskOf(`/proc/self/task/${tid}/stat`);
    if (task?.name === name) policies.push(task.policy);
  }
  return policies;
}
const fanoutThreads = () => (addon as unknown as { fanoutThreads(): number }).fanoutThreads();

describe('tapped edges on threads of their own (native spawner)', { skip }, () => {
  test('an edge keeps its thread when a reader attaches, the reader is fed by a thread of the addon\'s; the threads end with the edge, no thread or descriptor is left', async () => {
    const { rt, ws } = await setup('pump-threads');
    // Warm-up: whatever the runtime opens once (descriptors, threads) is open now.
    await (await rt.runPipeline({ label: 'warm', workspace: ws.id, tap: true, nodes: [{ label: 'a', exec: 'seq', argv: ['1000'] }, { label: 'b', exec: 'cat' }], edges: [{ from: 'a', to: 'b' }] })).done;
    assert.equal(pumpThreads(), 0);
    const fdsBefore = fds();
    const tasksBefore = tasks();
    const p = await rt.runPipeline(endlessChain('threads', ws.id));
    await until('bytes to cross both edges', async () => (await flowOf(p, 'pass->sink')).bytes > 1024 * 1024);
    assert.equal(pumpThreads(), 2);
    const reader = await attach((await flowOf(p, 'pass->sink')).socketPath!);
    await until('the runtime to see the reader', async () => (await flowOf(p, 'pass->sink')).readers === 1);
    // Before, the edge went back to the loop, which read the reader's copy and wrote it out.
    assert.equal(pumpThreads(), 2, 'the edge with a reader left its thread');
    assert.equal(fanoutThreads(), 1, 'the reader is not fed by a thread of the addon\'s');
    const at = (await flowOf(p, 'pass->sink')).bytes;
    await until('bytes to cross after the reader came', async () => (await flowOf(p, 'pass->sink')).bytes > at + 1024 * 1024);
    await p.stop({ graceMs: 0 });
    assert.equal(pumpThreads(), 0);
    // The fanout's thread hands its readers what is left (a second at most), then ends.
    await until('the fanout thread to end', () => fanoutThreads() === 0);
    const seen = await reader.received;
    assert.ok(seen.length > 0, 'the reader got nothing');
    assert.match(seen.toString(), /^[y\n]+$/, 'the reader got bytes yes never wrote');
    for (const node of p.nodes) assert.equal(isAlive(node.pid), false);
    // Closed handles release their descriptors as libuv closes them: no event says when.
    await until(`the descriptors to drop back to ${fdsBefore} (now ${fds()})`, () => fds() <= fdsBefore);
    await until(`the threads to drop back to ${tasksBefore} (now ${tasks()})`, () => tasks() <= tasksBefore);
  });

  test("the addon's byte movers (an edge's pump, a flood's capture) are named and SCHED_BATCH; the loop and the nodes keep their policy", async () => {
    const { rt, ws } = await setup('pump-policy');
    // The last node's stdout is captured and floods: the addon's capture thread takes it.
    const p = await rt.runPipeline({ ...endlessChain('policy', ws.id), nodes: [...endlessChain('policy', ws.id).nodes.slice(0, 2), { label: 'sink', exec: 'cat' }] });
    try {
      await until('two pump threads and a capture thread, by name', () => threadsNamed('shuma-pump').length === 2 && threadsNamed('shuma-capture').length === 1);
      // A woken mover must not preempt the writer that woke it (native/thread-end.h says why).
      assert.deepEqual(threadsNamed('shuma-pump'), [SCHED_BATCH, SCHED_BATCH]);
      assert.deepEqual(threadsNamed('shuma-capture'), [SCHED_BATCH]);
      assert.equal(taskOf(`/proc/self/task/${process.pid}/stat`)?.policy, SCHED_OTHER, "the loop's thread");
      for (const node of p.nodes) assert.equal(taskOf(`/proc/${node.pid}/stat`)?.policy, SCHED_OTHER, `node ${node.label}`);
    } finally {
      await p.stop({ graceMs: 0 });
    }
    await until('the movers to end with the pipeline', () => threadsNamed('shuma-pump').length === 0 && threadsNamed('shuma-capture').length === 0);
  });

  test('a fast edge that pauses: what was written before the pause crosses while the writer waits', async () => {
    const { rt, ws } = await setup('pump-pause');
    const gate = makeGate();
    // 20 MB at full speed (the edge's thread paces itself), then a pause at the gate, then a little more.
    const flood = 20_000_000;
    const p = await rt.runPipeline({
      label: 'pause',
      workspace: ws.id,
      tap: true,
      nodes: [
        { label: 'gen', exec: 'sh', argv: ['-c', `head -c ${flood} /dev/zero; printf end; read x < '${gate.path}'; printf more`] },
        { label: 'pass', exec: 'cat' },
        { label: 'count', exec: 'wc', argv: ['-c'] },
      ],
      edges: [
        { from: 'gen', to: 'pass' },
        { from: 'pass', to: 'count' },
      ],
    });
    // Nothing more comes until the gate opens: the last paced bytes must not wait for it.
    await until('the flood and its last bytes to cross both edges', async () => (await flowOf(p, 'pass->count')).bytes === flood + 3);
    assert.equal((await flowOf(p, 'gen->pass')).bytes, flood + 3);
    const close = gate.open();
    try {
      assert.equal((await p.done).ok, true);
      assert.equal(await logsOf(ws, p, 'count'), `${flood + 7}\n`);
    } finally {
      close();
    }
  });

  test('34 edges: 32 get a thread, the others are pumped on the loop; every byte crosses every edge, in order', async () => {
    const { rt, ws } = await setup('pump-bound');
    const gate = makeGate();
    const script = 'seq 1 200000';
    const cats = Array.from({ length: 33 }, (_, i) => ({ label: `cat${i}`, exec: 'cat' }));
    const nodes = [gated('gen', gate.path, script), ...cats, { label: 'sum', exec: 'cksum' }];
    const p = await rt.runPipeline({
      label: 'long',
      workspace: ws.id,
      tap: true,
      nodes,
      edges: nodes.slice(1).map((node, i) => ({ from: nodes[i]!.label, to: node.label })),
    });
    // The pumps start once every node runs; gen waits at its gate, so each edge waits for bytes.
    await until('the pumps to start', () => pumpThreads() >= 32);
    assert.equal(pumpThreads(), 32);
    const close = gate.open();
    try {
      assert.equal((await p.done).ok, true);
      assert.equal(pumpThreads(), 0);
      assert.equal(await logsOf(ws, p, 'sum'), bash(`${script} | cksum`).toString());
      const length = bash(script).length;
      for (const flow of await p.flows()) assert.equal(flow.bytes, length, `${flow.edge} counted ${flow.bytes} bytes`);
    } finally {
      close();
    }
  });
});
