import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import type { SnapshotData } from '../src/host/persistence/snapshot-data.js';
import { SnapshotEncoder } from '../src/host/persistence/snapshot-encoder.js';
import { readSnapshotFile } from '../src/host/persistence/snapshot-file.js';
import { coreOf } from '../src/host/runtime.js';
import { createRuntime } from '../src/index.js';
import { pollUntil, processesMentioning } from './helpers.js';

// A write keeps the bytes of each workspace whose change count did not move (collect.ts,
// snapshot-encoder.ts): the runtime must bump it at every change of what the file holds of the
// workspace, or the file goes on holding the old record. Each write is checked here against a
// fresh encoding of the very state it wrote (nothing kept): the two must be the same bytes.

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

test('every write equals a fresh encoding of the state it wrote, through runs, exits, restarts, pipelines, removals and stops', async () => {
  const base = mkdtempSync(path.join(tmpdir(), 'shuma-counts-'));
  dirs.push(base);
  const marker = `shuma-counts-${process.pid}`;
  const rt = await createRuntime({ stateDir: path.join(base, 'state'), workers: 1, statsIntervalMs: 0 });
  const core = coreOf(rt);
  // The store's own encoder, watched: each of its writes encoded again by a fresh one.
  const encoder = (core.state as unknown as { encoder: SnapshotEncoder }).encoder;
  const encode = encoder.encode.bind(encoder);
  const stale: string[] = [];
  let writes = 0;
  let kept = 0;
  encoder.encode = (writtenAt: number, data: unknown) => {
    const bytes = encode(writtenAt, data);
    writes++;
    kept += (data as SnapshotData).workspaces.length - encoder.encodedLast;
    const fresh = new SnapshotEncoder().encode(writtenAt, data);
    if (Buffer.compare(Buffer.from(bytes), Buffer.from(fresh)) !== 0) stale.push(`write ${writes}: ${JSON.stringify((data as SnapshotData).workspaces.map((w) => w.id))}`);
    return bytes;
  };
  /** A write now, whatever changed: every workspace whose count stayed is kept. */
  const written = async (what: string) => {
    core.state!.markDirty();
    await core.state!.flush();
    assert.deepEqual(stale, [], `after ${what}: a write kept a workspace's old bytes`);
  };
  try {
    const ws = await rt.createWorkspace({ label: 'busy' });
    const idle = await rt.createWorkspace({ label: 'idle' });
    await written('the creates');
    const once = await ws.run({ exec: 'true', label: 'once' });
    await once.exited;
    await pollUntil(() => ws.commands(), (list) => list.some((c) => c.label === 'once' && !c.alive), 'once ended');
    await written('a run that ended');
    const failing = await ws.run({ exec: 'sh', argv: ['-c', 'exit 3'], label: 'failing', restart: { onFailure: true, backoffMs: 1, maxBackoffMs: 1, maxRestarts: 2 } });
    await pollUntil(() => ws.commands(), (list) => list.filter((c) => c.label === 'failing' && !c.alive).length >= 3, 'the restarts given up');
    await failing.exited;
    await written('restarts given up');
    const pipeline = await rt.runPipeline({
      label: 'pipe',
      workspace: ws.id,
      nodes: [
        { label: 'echo', exec: 'sh', argv: ['-c', 'echo hi'] },
        { label: 'cat', exec: 'cat' },
      ],
      edges: [{ from: 'echo', to: 'cat' }],
    });
    await pipeline.done;
    await written('a pipeline done');
    const service = await ws.run({ exec: 'sh', argv: ['-c', `sleep 1000; : ${marker}`], label: 'service', restart: { onFailure: true, backoffMs: 1 } });
    await written('a service started');
    await ws.restartCommand('service');
    await pollUntil(() => ws.commands(), (list) => list.some((c) => c.label === 'service' && c.alive && c.id !== service.id), 'the service restarted');
    await written('a service restarted');
    await ws.stopCommand('service', { graceMs: 0 });
    await written('a command stopped');
    await ws.removeCommand('service');
    await written('a command removed');
    await idle.stop({ graceMs: 0 });
    await written('a workspace stopped');
    assert.ok(writes >= 9, `${writes} writes`);
    assert.ok(kept > 0, 'some writes kept a workspace (the idle one, at least once)');
  } finally {
    await rt.shutdown({ graceMs: 0 });
  }
  assert.deepEqual(processesMentioning(marker), []);
});

test('a write the moment the host sees an exit, before its actor hears it (a relaunch on a standing order under way), holds the exit', async () => {
  const base = mkdtempSync(path.join(tmpdir(), 'shuma-counts-'));
  dirs.push(base);
  const stateDir = path.join(base, 'state');
  const marker = `shuma-counts-exit-${process.pid}`;
  const rt = await createRuntime({ stateDir, workers: 1, statsIntervalMs: 0 });
  const core = coreOf(rt);
  try {
    const ws = await rt.createWorkspace({ label: 'relaunching' });
    const service = await ws.run({ exec: 'sh', argv: ['-c', `sleep 1000; : ${marker}`], label: 'service', restart: { onFailure: true, backoffMs: 0 } });
    await pollUntil(() => ws.describe('service'), (d) => d.state === 'running', 'the service running');
    // Its record's bytes kept at its count; from here on only this test writes.
    core.state!.markDirty();
    await core.state!.flush();
    core.state!.hold();
    const host = (core.placements.local as unknown as { host: { tellExit: (...args: unknown[]) => void } }).host;
    const tellExit = host.tellExit.bind(host);
    let written: Promise<void> | undefined;
    host.tellExit = (...args: unknown[]) => {
      tellExit(...args);
      const event = args[2] as { type: string; runId?: string };
      if (event.type === 'EXITED' && event.runId === service.id && !written) {
        core.state!.markDirty();
        written = core.state!.flush();
      }
    };
    process.kill(service.pid, 'SIGKILL');
    // (a promise would be awaited by pollUntil: whether there is one is asked)
    await pollUntil(() => written !== undefined, (started) => started, 'the write at the exit');
    await written;
    const read = await readSnapshotFile(stateDir);
    assert.equal(read.status, 'ok');
    const record = (read.data as SnapshotData).workspaces.find((w) => w.id === ws.id)!;
    assert.deepEqual(record.processes.filter((p) => p.runId === service.id), [], 'the ended run is still among the processes');
    const ended = [...(record.history?.runs ?? []), ...(record.unheardExits ?? [])].filter((run) => run.runId === service.id);
    assert.ok(ended.length > 0, 'the exit is not in the file');
    assert.equal(ended[0]!.exit.signal, 'SIGKILL');
    core.state!.release();
    await pollUntil(() => ws.describe('service'), (d) => d.state === 'running' && d.pid !== service.pid, 'the service relaunched');
  } finally {
    await rt.shutdown({ graceMs: 0 });
  }
  assert.deepEqual(processesMentioning(marker), []);
});
