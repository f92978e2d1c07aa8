// The data path of tapped pipelines under faults: flow readers that come late, come and go, or
// sit on a fan-out edge; a node killed mid-stream; a restart with a reader attached. With the
// native spawner the edges are pumped in C (splice, tee into a tap pipe while readers are
// connected); with SHUMA_SPAWNER=node by the JS pump: both must give bash's bytes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, readdirSync, writeSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { attach, bash, endlessChain, flowOf, gated, logsOf, makeGate, scratch, setup, until } from './flow-helpers.js';
import { isAlive } from './helpers.js';

const fds = () => readdirSync('/proc/self/fd').length;

/** `seen` is the end of `all`, and not empty: what crossed after a reader attached, in order, whole. */
function assertTailOf(seen: Buffer, all: Buffer, atLeast: number): void {
  assert.ok(seen.length >= atLeast, `the reader got ${seen.length} bytes, fewer than the ${atLeast} that crossed after it attached`);
  assert.ok(seen.length <= all.length, `the reader got ${seen.length} bytes of ${all.length}`);
  assert.ok(all.subarray(all.length - seen.length).equals(seen), 'the reader got bytes that are not the end of the stream');
}

describe('tapped pipelines: the data path under faults', () => {
  test('a reader that attaches mid-stream gets the rest of the stream, in order and whole', async () => {
    const { rt, ws } = await setup('late-reader');
    const gate = makeGate();
    const first = 'seq 1 100000';
    // 2.7 MB: the reader is never 4 MiB behind (where a flow reader is dropped), whatever its pace
    // against the edge's (a thread of the addon's feeds it as fast as the edge goes).
    const rest = 'seq 100001 500000';
    const p = await rt.runPipeline({
      label: 'late',
      workspace: ws.id,
      tap: true,
      nodes: [
        { label: 'gen', exec: 'sh', argv: ['-c', `${first}; read x < '${gate.path}'; ${rest}`] },
        { label: 'pass', exec: 'cat' },
        { label: 'sum', exec: 'cksum' },
      ],
      edges: [
        { from: 'gen', to: 'pass' },
        { from: 'pass', to: 'sum' },
      ],
    });
    const before = bash(first).length;
    // The first part crossed both edges (gen now waits at its gate): the reader comes in between.
    await until('the first part to cross', async () => (await flowOf(p, 'pass->sum')).bytes === before);
    const reader = await attach((await flowOf(p, 'pass->sum')).socketPath!);
    await until('the runtime to see the reader', async () => (await flowOf(p, 'pass->sum')).readers === 1);
    const close = gate.open();
    try {
      assert.equal((await p.done).ok, true);
      const all = bash(`${first}; ${rest}`);
      assertTailOf(await reader.received, all, all.length - before);
      assert.equal((await flowOf(p, 'pass->sum')).bytes, all.length);
      assert.equal(await logsOf(ws, p, 'sum'), bash(`(${first}; ${rest}) | cksum`).toString());
    } finally {
      close();
    }
  });

  test('readers that come and go (and one that never reads) while 30 MB flow do not disturb the edge', async () => {
    const { rt, ws } = await setup('churn');
    const gate = makeGate();
    const script = 'seq 1 4000000';
    const p = await rt.runPipeline({
      label: 'churn',
      workspace: ws.id,
      tap: true,
      nodes: [gated('gen', gate.path, script), { label: 'pass', exec: 'cat' }, { label: 'sum', exec: 'cksum' }],
      edges: [
        { from: 'gen', to: 'pass' },
        { from: 'pass', to: 'sum' },
      ],
    });
    const socketPath = (await flowOf(p, 'gen->pass')).socketPath!;
    const stuck = await attach(socketPath);
    stuck.socket.pause();
    const close = gate.open();
    try {
      // Readers attach and leave while the bytes flow: each arrival and departure turns the tap on or off.
      let finished = false;
      const done = p.done.finally(() => (finished = true));
      for (let churned = 0; !finished && churned < 40; churned++) {
        const reader = await new Promise<net.Socket>((resolve) => {
          const socket = net.connect(socketPath, () => resolve(socket));
          socket.on('error', () => resolve(socket));
        });
        reader.destroy();
      }
      assert.equal((await done).ok, true);
      assert.equal(await logsOf(ws, p, 'sum'), bash(`${script} | cksum`).toString());
      assert.equal((await flowOf(p, 'gen->pass')).bytes, bash(script).length);
      stuck.socket.resume();
      await stuck.received;
    } finally {
      close();
    }
  });

  test('fan-out with a reader on one edge: both nodes and the reader get every byte', async () => {
    const { rt, ws } = await setup('fanout-tap');
    const gate = makeGate();
    const script = 'seq 1 300000';
    const p = await rt.runPipeline({
      label: 'fan',
      workspace: ws.id,
      tap: true,
      nodes: [gated('gen', gate.path, script), { label: 'a', exec: 'cksum' }, { label: 'b', exec: 'wc', argv: ['-c'] }],
      edges: [
        { from: 'gen', to: 'a' },
        { from: 'gen', to: 'b' },
      ],
    });
    const reader = await attach((await flowOf(p, 'gen->b')).socketPath!);
    await until('the runtime to see the reader', async () => (await flowOf(p, 'gen->b')).readers === 1);
    const close = gate.open();
    try {
      assert.equal((await p.done).ok, true);
      const all = bash(script);
      assert.ok((await reader.received).equals(all), 'the flow reader did not get the whole stream');
      assert.equal(await logsOf(ws, p, 'a'), bash(`${script} | cksum`).toString());
      assert.equal(await logsOf(ws, p, 'b'), `${all.length}\n`);
      for (const edge of ['gen->a', 'gen->b']) assert.equal((await flowOf(p, edge)).bytes, all.length);
    } finally {
      close();
    }
  });

  test('a node killed mid-stream: its writer gets SIGPIPE, the pipeline ends, no descriptor is left', async () => {
    const { rt, ws } = await setup('killed');
    // Warm-up: whatever the runtime opens once is open now.
    await (await rt.runPipeline({ label: 'warm', workspace: ws.id, tap: true, nodes: [{ label: 'a', exec: 'true' }, { label: 'b', exec: 'cat' }], edges: [{ from: 'a', to: 'b' }] })).done;
    const baseline = fds();
    const p = await rt.runPipeline(endlessChain('killed', ws.id));
    const reader = await attach((await flowOf(p, 'gen->pass')).socketPath!);
    await until('bytes to flow', async () => (await flowOf(p, 'pass->sink')).bytes > 1024 * 1024);
    const pass = p.nodes.find((n) => n.label === 'pass')!.pid;
    process.kill(pass, 'SIGKILL');
    const result = await p.done;
    assert.equal(result.ok, false);
    assert.equal(result.exits.pass!.signal, 'SIGKILL');
    // As under bash: the reader of yes is gone, yes dies of SIGPIPE at its next write.
    assert.equal(result.exits.gen!.signal, 'SIGPIPE');
    assert.equal(result.exits.sink!.code, 0);
    await reader.received;
    for (const node of p.nodes) assert.equal(isAlive(node.pid), false);
    // Closed handles release their descriptors as libuv closes them: no event says when.
    await until(`the descriptors to drop back to ${baseline} (now ${fds()})`, () => fds() <= baseline);
  });

  test('a reader that stops reading is dropped once 4 MiB behind, never stalling the edge; a reader that keeps up gets every byte; no descriptor is left', async () => {
    const { rt, ws } = await setup('slow-reader');
    await (await rt.runPipeline({ label: 'warm', workspace: ws.id, tap: true, nodes: [{ label: 'a', exec: 'true' }, { label: 'b', exec: 'cat' }], edges: [{ from: 'a', to: 'b' }] })).done;
    const baseline = fds();
    // Parts of less than 4 MiB each, 10 MB together, each written once the reader that reads
    // has the one before whole: that reader is never 4 MiB behind, the stuck one is (beyond
    // what its socket's kernel buffer holds, 2 MiB at most).
    const parts = ['seq 1 400000', 'seq 400001 900000', 'seq 900001 1400000'];
    const gates = [...parts.map(() => makeGate()), makeGate()];
    const script = parts.map((part, i) => `read x < '${gates[i]!.path}'; ${part}`).join('; ');
    const p = await rt.runPipeline({
      label: 'slow',
      workspace: ws.id,
      tap: true,
      // gen waits at a last gate: the stuck reader must be dropped while the pipeline still runs.
      nodes: [
        { label: 'gen', exec: 'sh', argv: ['-c', `${script}; read x < '${gates[parts.length]!.path}'`] },
        { label: 'sum', exec: 'cksum' },
      ],
      edges: [{ from: 'gen', to: 'sum' }],
    });
    const socketPath = (await flowOf(p, 'gen->sum')).socketPath!;
    const stuck = await attach(socketPath);
    stuck.socket.pause();
    const reader = await attach(socketPath);
    let got = 0;
    reader.socket.on('data', (chunk: Buffer) => (got += chunk.length));
    await until('the runtime to see both readers', async () => (await flowOf(p, 'gen->sum')).readers === 2);
    const closers: Array<() => void> = [];
    const all = bash(parts.join('; '));
    try {
      let written = 0;
      for (const [i, part] of parts.entries()) {
        closers.push(gates[i]!.open());
        written += bash(part).length;
        await until(`the reader to get part ${i + 1}`, () => got === written);
      }
      // The stuck reader never read: the edge and the other reader went on without it.
      await until('the stuck reader to be dropped', async () => (await flowOf(p, 'gen->sum')).readers === 1);
      closers.push(gates[parts.length]!.open());
      assert.equal((await p.done).ok, true);
      assert.equal(await logsOf(ws, p, 'sum'), bash(`(${parts.join('; ')}) | cksum`).toString());
      assert.ok((await reader.received).equals(all), 'the reader that kept up did not get the whole stream');
      stuck.socket.resume();
      const seen = await stuck.received;
      // Dropped, not skipped: an unbroken start of the stream (what its socket held), then its end.
      assert.ok(seen.length < 4 * 1024 * 1024, `the stuck reader got ${seen.length} bytes`);
      assert.ok(all.subarray(0, seen.length).equals(seen), 'the stuck reader got bytes that are not the start of the stream');
    } finally {
      for (const close of closers) close();
    }
    await until(`the descriptors to drop back to ${baseline} (now ${fds()})`, () => fds() <= baseline);
  });

  test('a restarted pipeline with a reader attached: the reader gets every attempt\'s bytes, then the end', async () => {
    const { rt, ws } = await setup('restart-reader');
    // A gate that lets three attempts through, one line each.
    const gate = path.join(scratch, 'gate-restarts');
    execFileSync('mkfifo', [gate]);
    const p = await rt.runPipeline({
      label: 'flaky',
      workspace: ws.id,
      tap: true,
      nodes: [gated('gen', gate, 'seq 1 20000; exit 1'), { label: 'sum', exec: 'cksum' }],
      edges: [{ from: 'gen', to: 'sum' }],
      restart: { onFailure: true, backoffMs: 1, maxRestarts: 2 },
    });
    const reader = await attach((await flowOf(p, 'gen->sum')).socketPath!);
    await until('the runtime to see the reader', async () => (await flowOf(p, 'gen->sum')).readers === 1);
    const holder = openSync(gate, constants.O_RDWR);
    writeSync(holder, 'go\ngo\ngo\n');
    try {
      const result = await p.done;
      assert.equal(result.restarts, 2);
      const once = bash('seq 1 20000');
      assert.ok((await reader.received).equals(Buffer.concat([once, once, once])), 'the reader did not get the three attempts whole');
      assert.equal((await flowOf(p, 'gen->sum')).bytes, 3 * once.length);
    } finally {
      closeSync(holder);
    }
  });
});
