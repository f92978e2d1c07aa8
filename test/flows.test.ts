// Tapped pipelines: every edge's bytes pass through the runtime over kernel pipes, are metered
// and published on a flow socket. Real coreutils, compared with bash where bash has an answer.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ShumaError, type HealthCounts } from '../src/index.js';
import { attach, bash, endlessChain, flowOf, gated, logsOf, makeGate, scratch, setup, until } from './flow-helpers.js';
import { isAlive } from './helpers.js';

/** The counts of health() this file is about (it may report more). */
function counts(health: HealthCounts): Pick<HealthCounts, 'aliveWorkspaces' | 'aliveCommands' | 'alivePipelines' | 'activeFlows'> {
  const { aliveWorkspaces, aliveCommands, alivePipelines, activeFlows } = health;
  return { aliveWorkspaces, aliveCommands, alivePipelines, activeFlows };
}

describe('tapped pipelines', () => {
  test('seq 1 100000 | wc -c: bash\'s bytes, and the flow counted every byte that crossed', async () => {
    const { rt, ws } = await setup('count');
    const p = await rt.runPipeline({
      label: 'count',
      workspace: ws.id,
      tap: true,
      nodes: [
        { label: 'gen', exec: 'seq', argv: ['1', '100000'] },
        { label: 'count', exec: 'wc', argv: ['-c'] },
      ],
      edges: [{ from: 'gen', to: 'count' }],
    });
    const result = await p.done;
    assert.equal(result.ok, true);
    const expected = bash('seq 1 100000 | wc -c').toString();
    assert.equal(await logsOf(ws, p, 'count'), expected);
    const flow = await flowOf(p, 'gen->count');
    assert.equal(flow.bytes, Number(expected.trim()));
    assert.equal(flow.bytes, bash('seq 1 100000').length);
    assert.equal(flow.stream, 'stdout');
    assert.equal(flow.socketPath, undefined, 'the socket is gone once the pipeline ended');
  });

  test('yes | head -1 ends within a second: yes killed by SIGPIPE, as under bash; the pipeline is ok', async () => {
    const { rt, ws } = await setup('sigpipe');
    const started = Date.now();
    const p = await rt.runPipeline({
      label: 'yes-head',
      workspace: ws.id,
      tap: true,
      nodes: [
        { label: 'yes', exec: 'yes' },
        { label: 'head', exec: 'head', argv: ['-1'] },
      ],
      edges: [{ from: 'yes', to: 'head' }],
    });
    const result = await p.done;
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    assert.equal(result.ok, true);
    // bash: `yes | head -1; echo ${PIPESTATUS[@]}` prints y, then 141 0.
    const [line, statuses] = bash('yes | head -1; echo ${PIPESTATUS[@]}').toString().split('\n');
    assert.equal(await logsOf(ws, p, 'head'), `${line}\n`);
    assert.deepEqual(result.exits.yes, { code: null, signal: 'SIGPIPE', status: Number(statuses!.split(' ')[0]) });
    assert.equal(result.exits.head!.status, Number(statuses!.split(' ')[1]));
  });

  test('a reader attached to the flow socket gets the bytes that crossed after it attached', async () => {
    const { rt, ws } = await setup('reader');
    const gate = makeGate();
    const p = await rt.runPipeline({
      label: 'watched',
      workspace: ws.id,
      tap: true,
      nodes: [gated('gen', gate.path, 'seq 1 1000'), { label: 'count', exec: 'wc', argv: ['-c'] }],
      edges: [{ from: 'gen', to: 'count' }],
    });
    const { socketPath } = await flowOf(p, 'gen->count');
    assert.ok(socketPath && existsSync(socketPath));
    const reader = await attach(socketPath);
    await until('the runtime to see the reader', async () => (await flowOf(p, 'gen->count')).readers === 1);
    const close = gate.open();
    try {
      const result = await p.done;
      assert.equal(result.ok, true);
      const seen = await reader.received;
      assert.deepEqual(seen, bash('seq 1 1000'));
      assert.equal((await flowOf(p, 'gen->count')).bytes, seen.length);
      assert.equal(await logsOf(ws, p, 'count'), bash('seq 1 1000 | wc -c').toString());
    } finally {
      close();
    }
  });

  test('a stuck reader (connected, never reading) does not stall 50 MB: it is dropped', async () => {
    const { rt, ws } = await setup('stuck');
    const gate = makeGate();
    const total = 50 * 1024 * 1024;
    const p = await rt.runPipeline({
      label: 'firehose',
      workspace: ws.id,
      tap: true,
      nodes: [gated('gen', gate.path, `head -c ${total} /dev/zero`), { label: 'count', exec: 'wc', argv: ['-c'] }],
      edges: [{ from: 'gen', to: 'count' }],
    });
    const { socketPath } = await flowOf(p, 'gen->count');
    const stuck = await attach(socketPath!);
    stuck.socket.pause();
    await until('the runtime to see the reader', async () => (await flowOf(p, 'gen->count')).readers === 1);
    const close = gate.open();
    try {
      const result = await p.done;
      assert.equal(result.ok, true);
      assert.equal(await logsOf(ws, p, 'count'), `${total}\n`);
      assert.equal((await flowOf(p, 'gen->count')).bytes, total);
      // It was dropped: what it can still read is what the kernel had queued, then the end.
      stuck.socket.resume();
      const seen = await stuck.received;
      // Without the bound the runtime would have queued all 50 MB for it; it holds 4 MiB at most.
      assert.ok(seen.length < 4 * 1024 * 1024, `the stuck reader got ${seen.length} bytes`);
    } finally {
      close();
    }
  });

  test('a full downstream pauses the upstream: nothing piles up in the runtime', async () => {
    const { rt, ws } = await setup('backpressure');
    const gate = makeGate();
    const total = 100 * 1024 * 1024;
    const p = await rt.runPipeline({
      label: 'slow-reader',
      workspace: ws.id,
      tap: true,
      nodes: [{ label: 'gen', exec: 'head', argv: ['-c', String(total), '/dev/zero'] }, gated('count', gate.path, 'exec wc -c')],
      edges: [{ from: 'gen', to: 'count' }],
    });
    const gen = p.nodes.find((n) => n.label === 'gen')!.pid;
    // The reader does not read yet: its pipe fills, the runtime stops reading, gen blocks writing.
    await until('gen to block in a pipe write', () => readFileSync(`/proc/${gen}/wchan`, 'latin1').includes('pipe_write'));
    const crossed = (await flowOf(p, 'gen->count')).bytes;
    // The reader's pipe's capacity plus at most one chunk in flight (64 KiB). The pipe holds
    // 64 KiB, or 1 MiB once the pump found the edge fast (a full pipe moved at once, as a slow
    // turn of a loaded machine lets happen): the bound is the grown one. Without backpressure
    // all 100 MiB would cross.
    assert.ok(crossed <= 1024 * 1024 + 64 * 1024, `${crossed} bytes crossed while the reader read nothing`);
    const close = gate.open();
    try {
      assert.equal((await p.done).ok, true);
      assert.equal(await logsOf(ws, p, 'count'), `${total}\n`);
    } finally {
      close();
    }
  });

  test('fan-out: one stdout to two readers, both get every byte', async () => {
    const { rt, ws } = await setup('fanout');
    const p = await rt.runPipeline({
      label: 'tee',
      workspace: ws.id,
      tap: true,
      nodes: [
        { label: 'gen', exec: 'seq', argv: ['1', '200000'] },
        { label: 'sum', exec: 'sha256sum' },
        { label: 'lines', exec: 'wc', argv: ['-l'] },
      ],
      edges: [
        { from: 'gen', to: 'sum' },
        { from: 'gen', to: 'lines' },
      ],
    });
    assert.equal((await p.done).ok, true);
    assert.equal(await logsOf(ws, p, 'sum'), bash('seq 1 200000 | sha256sum').toString());
    assert.equal(await logsOf(ws, p, 'lines'), bash('seq 1 200000 | wc -l').toString());
    const bytes = bash('seq 1 200000').length;
    assert.equal((await flowOf(p, 'gen->sum')).bytes, bytes);
    assert.equal((await flowOf(p, 'gen->lines')).bytes, bytes);
  });

  test('fan-out: the writer gets SIGPIPE only once every reader is gone', async () => {
    const { rt, ws } = await setup('fanout-sigpipe');
    const p = await rt.runPipeline({
      label: 'yes-two-heads',
      workspace: ws.id,
      tap: true,
      nodes: [
        { label: 'yes', exec: 'yes' },
        { label: 'one', exec: 'head', argv: ['-1'] },
        { label: 'many', exec: 'head', argv: ['-100000'] },
      ],
      edges: [
        { from: 'yes', to: 'one' },
        { from: 'yes', to: 'many' },
      ],
    });
    const result = await p.done;
    assert.equal(result.ok, true);
    assert.equal(result.exits.yes!.signal, 'SIGPIPE');
    assert.equal(await logsOf(ws, p, 'one'), 'y\n');
    assert.equal(await logsOf(ws, p, 'many'), bash('yes | head -100000').toString().slice(-1024 * 1024));
  });

  test('a stderr edge is tapped too; the unconnected stdout is captured', async () => {
    const { rt, ws } = await setup('stderr');
    const p = await rt.runPipeline({
      label: 'errs',
      workspace: ws.id,
      tap: true,
      nodes: [
        { label: 'noisy', exec: 'sh', argv: ['-c', 'echo out; echo err >&2'] },
        { label: 'cat', exec: 'cat' },
      ],
      edges: [{ from: 'noisy', to: 'cat', stream: 'stderr' }],
    });
    assert.equal((await p.done).ok, true);
    assert.equal(await logsOf(ws, p, 'cat'), 'err\n');
    assert.equal(await logsOf(ws, p, 'noisy'), 'out\n');
    const flow = await flowOf(p, 'noisy->cat');
    assert.equal(flow.stream, 'stderr');
    assert.equal(flow.bytes, 4);
  });

  test('the socket files go when the pipeline is stopped, and its readers see the end', async () => {
    const flowDir = path.join(scratch, 'stop');
    const { rt, ws } = await setup('stop', flowDir);
    assert.deepEqual(ws.warnings, []);
    const p = await rt.runPipeline(endlessChain('endless', ws.id));
    const flows = await p.flows();
    assert.equal(flows.length, 2);
    for (const flow of flows) assert.equal(path.dirname(flow.socketPath!), flowDir);
    assert.equal((await rt.health()).activeFlows, 2);
    const reader = await attach(flows[1]!.socketPath!);
    await until('bytes to flow', async () => (await flowOf(p, 'pass->sink')).bytes > 0);
    assert.ok((await flowOf(p, 'pass->sink')).bytesPerSec > 0);
    await p.stop({ graceMs: 200 });
    for (const flow of flows) assert.equal(existsSync(flow.socketPath!), false);
    assert.deepEqual(readdirSync(flowDir), []);
    assert.equal((await rt.health()).activeFlows, 0);
    await reader.received;
    for (const node of p.nodes) assert.equal(isAlive(node.pid), false);
  });

  test('the socket files and the private flow directory go when the pipeline ends or its workspace stops', async () => {
    const { rt, ws } = await setup('private');
    const short = await rt.runPipeline({
      label: 'short',
      workspace: ws.id,
      tap: true,
      nodes: [
        { label: 'gen', exec: 'seq', argv: ['3'] },
        { label: 'cat', exec: 'cat' },
      ],
      edges: [{ from: 'gen', to: 'cat' }],
    });
    const gate = makeGate();
    const long = await rt.runPipeline({
      label: 'long',
      workspace: ws.id,
      tap: true,
      nodes: [gated('gen', gate.path, 'seq 3'), { label: 'cat', exec: 'cat' }],
      edges: [{ from: 'gen', to: 'cat' }],
    });
    const shortSocket = (await flowOf(short, 'gen->cat')).socketPath;
    const longSocket = (await flowOf(long, 'gen->cat')).socketPath!;
    await short.done;
    if (shortSocket) assert.equal(existsSync(shortSocket), false);
    // The runtime's own directory is private to this user.
    const dir = path.dirname(longSocket);
    assert.ok(dir.startsWith(tmpdir()));
    assert.equal(execFileSync('stat', ['-c', '%a', dir]).toString().trim(), '700');
    assert.equal(existsSync(longSocket), true);
    await ws.stop({ graceMs: 0 });
    assert.equal(existsSync(longSocket), false);
    assert.equal(existsSync(dir), false, 'the private directory goes with its last flow');
    assert.equal((await rt.health()).activeFlows, 0);
  });

  test('activeFlows counts live flow channels across pipelines', async () => {
    const { rt, ws } = await setup('count-flows');
    const chain = (label: string, length: number) =>
      rt.runPipeline({
        label,
        workspace: ws.id,
        tap: true,
        nodes: Array.from({ length }, (_, i) =>
          i === 0 ? { label: 'n0', exec: 'sleep', argv: ['1000'] } : { label: `n${i}`, exec: 'cat' },
        ),
        edges: Array.from({ length: length - 1 }, (_, i) => ({ from: `n${i}`, to: `n${i + 1}` })),
      });
    assert.equal((await rt.health()).activeFlows, 0);
    const three = await chain('three', 3);
    assert.equal((await rt.health()).activeFlows, 2);
    const two = await chain('two', 2);
    assert.equal((await rt.health()).activeFlows, 3);
    await three.stop({ graceMs: 0 });
    assert.equal((await rt.health()).activeFlows, 1);
    await two.stop({ graceMs: 0 });
    assert.deepEqual(counts(await rt.health()), { aliveWorkspaces: 1, aliveCommands: 0, alivePipelines: 0, activeFlows: 0 });
  });

  test('a restarted pipeline keeps its flow channel; bytes add up over the attempts', async () => {
    const { rt, ws } = await setup('restarts');
    const p = await rt.runPipeline({
      label: 'flaky',
      workspace: ws.id,
      tap: true,
      nodes: [
        { label: 'gen', exec: 'sh', argv: ['-c', 'echo hi; exit 1'] },
        { label: 'cat', exec: 'cat' },
      ],
      edges: [{ from: 'gen', to: 'cat' }],
      restart: { onFailure: true, backoffMs: 1, maxRestarts: 2 },
    });
    const first = (await flowOf(p, 'gen->cat')).socketPath;
    const result = await p.done;
    assert.equal(result.ok, false);
    assert.equal(result.restarts, 2);
    assert.equal((await flowOf(p, 'gen->cat')).bytes, 3 * 'hi\n'.length);
    if (first) assert.equal(existsSync(first), false);
  });

  test('no descriptor of the runtime is left behind by tapped pipelines that ended or were stopped', async () => {
    const { rt, ws } = await setup('fds');
    const run = (nodes: Array<{ label: string; exec: string; argv?: string[] }>) =>
      rt.runPipeline({
        label: 'fds',
        workspace: ws.id,
        tap: true,
        nodes,
        edges: nodes.slice(1).map((node, i) => ({ from: nodes[i]!.label, to: node.label })),
      });
    const chain = () => run([{ label: 'a', exec: 'seq', argv: ['1000'] }, { label: 'b', exec: 'cat' }, { label: 'c', exec: 'wc' }]);
    await (await chain()).done; // warm-up: whatever the runtime opens once is open now
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 3; i++) await (await chain()).done;
    const endless = await run([{ label: 'a', exec: 'yes' }, { label: 'b', exec: 'cat' }, { label: 'c', exec: 'sh', argv: ['-c', 'cat > /dev/null'] }]);
    await attach((await flowOf(endless, 'a->b')).socketPath!);
    await endless.stop({ graceMs: 0 });
    // Closed handles release their descriptors as libuv closes them: no event says when.
    await until(`the descriptors to drop back to ${before} (now ${fds()})`, () => fds() <= before);
  });

  test('a flowDir too long for a socket path: INVALID_SPEC naming flowDir, nothing started', async () => {
    const flowDir = path.join(scratch, 'x'.repeat(90));
    const { rt, ws } = await setup('too-long', flowDir);
    assert.equal(ws.warnings.length, 1);
    assert.match(ws.warnings[0]!, /^flowDir .* bytes long/);
    await assert.rejects(
      rt.runPipeline({
        label: 'refused',
        workspace: ws.id,
        tap: true,
        nodes: [
          { label: 'gen', exec: 'seq', argv: ['3'] },
          { label: 'cat', exec: 'cat' },
        ],
        edges: [{ from: 'gen', to: 'cat' }],
      }),
      (error: unknown) => {
        assert.ok(error instanceof ShumaError);
        assert.equal(error.code, 'INVALID_SPEC');
        assert.equal(error.field, 'flowDir');
        assert.match(error.message, /^INVALID_SPEC: flowDir: .* bytes long; a unix socket path may have at most 107 bytes/);
        return true;
      },
    );
    assert.deepEqual(counts(await rt.health()), { aliveWorkspaces: 1, aliveCommands: 0, alivePipelines: 0, activeFlows: 0 });
    assert.deepEqual(await ws.commands(), []);
    assert.equal(existsSync(flowDir), false, 'a refused flowDir is not even made');
    // Untapped pipelines need no socket: they still run there.
    const plain = await rt.runPipeline({
      label: 'plain',
      workspace: ws.id,
      nodes: [
        { label: 'gen', exec: 'seq', argv: ['3'] },
        { label: 'cat', exec: 'cat' },
      ],
      edges: [{ from: 'gen', to: 'cat' }],
    });
    assert.equal((await plain.done).ok, true);
    assert.deepEqual(await plain.flows(), []);
  });
});
