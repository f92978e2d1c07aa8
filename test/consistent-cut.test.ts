import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { knownRunIds } from '../src/host/persistence/restore.js';
import type { SnapshotData } from '../src/host/persistence/snapshot-data.js';
import { readSnapshotFile } from '../src/host/persistence/snapshot-file.js';
import { createRuntime } from '../src/index.js';
import { startChildRuntime } from './child-runtime.js';
import { isAlive, pollUntil, processesMentioning, waitGone } from './helpers.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'consistent-cut-child.js');

/** Every process the file lists is a run its workspace's actor knows: the two are one cut. */
function unknownProcesses(data: SnapshotData): string[] {
  return data.workspaces.flatMap((w) => {
    const known = knownRunIds(w.actor);
    return w.processes.filter((p) => !known.has(p.runId)).map((p) => `${w.id}: run ${p.runId} (pid ${p.pid})`);
  });
}

/**
 * Starts a runtime in a child process on a fresh stateDir, reads the one line it writes when its
 * snapshot holds the moment under test, and SIGKILLs it there: the file is what it left.
 */
async function killedOnceWritten(script: string, prefix: string, ...args: string[]) {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), `${prefix}-`)), 'state');
  dirs.push(path.dirname(dir));
  const marker = `${prefix}-${process.pid}`;
  const { child: runtime, release } = startChildRuntime(script, [dir, marker, ...args], dir);
  const exited = new Promise((resolve) => runtime.once('exit', resolve));
  const cleanUp = async () => {
    if (runtime.exitCode === null && runtime.signalCode === null) runtime.kill('SIGKILL');
    await exited;
    for (const pid of processesMentioning(marker)) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    release();
  };
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      runtime.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      runtime.once('exit', (code) => reject(new Error(`the runtime child exited (${code}) before writing`)));
    });
    const first = JSON.parse(line) as { runId: string; pid: number };
    runtime.kill('SIGKILL');
    await exited;
    const read = await readSnapshotFile(dir);
    assert.equal(read.status, 'ok');
    const data = read.data as SnapshotData;
    assert.equal(data.workspaces.length, 1, 'the workspace is in the file');
    return { dir, marker, first, data, cleanUp };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

describe('the process table and the actors in one cut', () => {
  test('a snapshot written the moment a spawn completes lists no process its actor does not know; restored, the command runs once', async () => {
    const { dir, marker, first, data, cleanUp } = await killedOnceWritten(child, 'shuma-cut');
    try {
      assert.deepEqual(unknownProcesses(data), [], 'a process in the file whose actor does not know it');

      // The next runtime on the file: whatever the file holds, the command runs once, not twice.
      const rt = await createRuntime({ stateDir: dir, workers: 1, statsIntervalMs: 0, orphans: 'adopt' });
      try {
        const ws = rt.workspace(data.workspaces[0]!.id)!;
        const running = await pollUntil(
          () => ws.commands(),
          (list) => list.some((c) => c.label === 'service' && c.alive),
          'the service running again',
        );
        const alive = running.filter((c) => c.alive);
        assert.equal(alive.length, 1);
        // Adopted (the file knew it) or killed and started again (it did not): never both.
        if (alive[0]!.id !== first.runId) await waitGone(first.pid);
        const shells = await pollUntil(
          async () => processesMentioning(marker),
          (pids) => pids.length === 1,
          'one process of the command',
        );
        assert.deepEqual(shells, [alive[0]!.pid]);
      } finally {
        await rt.shutdown({ graceMs: 0 });
      }
      assert.deepEqual(processesMentioning(marker), []);
    } finally {
      await cleanUp();
    }
  });
});

/** The state a workspace's command is in, as the file holds its actor. */
function commandStateInFile(data: SnapshotData, label: string): string {
  const children = (data.workspaces[0]!.actor as { children?: Record<string, { snapshot?: { value?: unknown; context?: { label?: unknown } } }> }).children ?? {};
  const child = Object.values(children).find((c) => c.snapshot?.context?.label === label);
  return child ? JSON.stringify(child.snapshot!.value) : 'absent';
}

describe('a one-shot command caught starting by the snapshot', () => {
  test('the file holds it starting (its spawn crossing to its actor); restored after a SIGKILL, it starts again, once, as a supervised one does', async () => {
    const { dir, marker, first, data, cleanUp } = await killedOnceWritten(child, 'shuma-cut-once', 'one-shot');
    try {
      // The cut this test is about: the run is out of the file, its actor still starting.
      assert.equal(commandStateInFile(data, 'service'), '"starting"');
      assert.deepEqual(data.workspaces[0]!.processes, []);

      const rt = await createRuntime({ stateDir: dir, workers: 1, statsIntervalMs: 0, orphans: 'adopt' });
      try {
        const ws = rt.workspace(data.workspaces[0]!.id)!;
        const described = await pollUntil(
          () => ws.describe('service'),
          (d) => d.state !== 'starting',
          'the restored command past starting',
        );
        assert.equal(described.state, 'running', `the command ended ${described.state}: the run the user ordered never happened`);
        const alive = (await ws.commands()).filter((c) => c.alive);
        assert.equal(alive.length, 1);
        assert.notEqual(alive[0]!.id, first.runId, 'a new run: the first was never in the file');
        await waitGone(first.pid);
        // Waited for, not read once: `sh` forks before it execs `sleep`, and until that exec the
        // fork's command line is the shell's, marker included (seen in CI as pids n and n+1).
        const shells = await pollUntil(
          async () => processesMentioning(marker),
          (pids) => pids.length === 1,
          'one process of the command',
        );
        assert.deepEqual(shells, [alive[0]!.pid]);
        assert.equal(described.restarts, 0, 'starting it is no restart: it never ran as far as the file knows');
      } finally {
        await rt.shutdown({ graceMs: 0 });
      }
      assert.deepEqual(processesMentioning(marker), []);
    } finally {
      await cleanUp();
    }
  });
});

const exitChild = path.join(path.dirname(fileURLToPath(import.meta.url)), 'consistent-cut-exit-child.js');

describe('an exit the host saw and its actor had not heard yet', () => {
  test('a snapshot written the moment the host sees an exit: restored, the command ended as it did (exited 7), not lost', async () => {
    const { dir, marker, first, data, cleanUp } = await killedOnceWritten(exitChild, 'shuma-cut-exit');
    try {
      // The cut this test is about: the actor in the file still holds the run that ended.
      assert.ok(knownRunIds(data.workspaces[0]!.actor).has(first.runId), 'the file was written before the actor heard the exit');

      const rt = await createRuntime({ stateDir: dir, workers: 1, statsIntervalMs: 0 });
      try {
        const ws = rt.workspace(data.workspaces[0]!.id)!;
        const described = await pollUntil(
          () => ws.describe('job'),
          (d) => d.state !== 'running' && d.state !== 'up',
          'the restored command past its run',
        );
        assert.equal(described.state, 'exited', `the command ended as ${described.state}, not as its run did`);
        assert.deepEqual(described.runs.map((r) => [r.id, r.exit?.code]), [[first.runId, 7]]);
        assert.equal(described.restarts, 0);
      } finally {
        await rt.shutdown({ graceMs: 0 });
      }
      assert.deepEqual(processesMentioning(marker), []);
    } finally {
      await cleanUp();
    }
  });
});
