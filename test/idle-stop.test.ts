import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { createRuntime, type Workspace } from '../src/index.js';
import { createActor } from 'xstate';
import { workspaceMachine } from '../src/machines/workspace-machine.js';
import { resolveRestartPolicy } from '../src/protocol/validate-spec.js';
import { fixture, isAlive, processesMentioning, startRuntime, waitForOutput } from './helpers.js';

// A workspace that never ran anything has nothing to reap: the host says so with its STOP, and
// its actor goes from running to stopped at once (workspace-lifecycle.ts requestStop). One that
// holds a process still goes through reaping: SIGTERM, the grace, SIGKILL, GROUPS_EMPTY.

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function stateDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'shuma-idle-stop-'));
  dirs.push(dir);
  return path.join(dir, 'state');
}

/** Every state a workspace's mirror moves through from now on. */
function statesOf(ws: Workspace): unknown[] {
  const states: unknown[] = [];
  ws.subscribe((snapshot) => states.push(snapshot.value));
  return states;
}

describe('stopping a workspace with nothing to reap', () => {
  test('the machine stops at once on a STOP that says the groups are empty, and only when it never started a command', () => {
    const at = 1_000;
    const empty = createActor(workspaceMachine, { input: { id: 'a', label: 'a', ttlMs: null } }).start();
    empty.send({ type: 'START', at });
    empty.send({ type: 'STOP', at: at + 5, graceMs: 0, reason: 'requested', groupsEmpty: true });
    const stopped = empty.getSnapshot();
    assert.equal(stopped.value, 'stopped');
    assert.equal(stopped.status, 'done');
    assert.deepEqual(
      { reaped: stopped.context.reaped, stoppedAt: stopped.context.stoppedAt, stopReason: stopped.context.stopReason, graceDeadline: stopped.context.graceDeadline },
      { reaped: 0, stoppedAt: at + 5, stopReason: 'requested', graceDeadline: null },
    );

    // Without the host's word, it reaps as before.
    const unsaid = createActor(workspaceMachine, { input: { id: 'b', label: 'b', ttlMs: null } }).start();
    unsaid.send({ type: 'START', at });
    unsaid.send({ type: 'STOP', at: at + 5, graceMs: 0, reason: 'requested' });
    assert.deepEqual(unsaid.getSnapshot().value, { reaping: 'killing' });

    // One that started a command does not take it: its command's run is its own to end.
    const busy = createActor(workspaceMachine, { input: { id: 'c', label: 'c', ttlMs: null } }).start();
    busy.send({ type: 'START', at });
    busy.send({ type: 'RUN', at, key: 'k1', label: 'x', policy: resolveRestartPolicy(undefined) });
    busy.send({ type: 'STOP', at: at + 5, graceMs: 100, reason: 'requested', groupsEmpty: true });
    assert.deepEqual(busy.getSnapshot().value, { reaping: 'terminating' });
  });

  test('ws.stop() of an idle workspace: running, then stopped, nothing reaped; one with a process is reaped with grace', async () => {
    const rt = await startRuntime();
    const idle = await rt.createWorkspace({ label: 'idle' });
    const idleStates = statesOf(idle);
    assert.deepEqual(await idle.stop({ graceMs: 200 }), { reaped: 0, escaped: [] });
    assert.deepEqual(idleStates, ['stopped']);
    assert.equal((await rt.listWorkspaces()).some((ws) => ws.id === idle.id), false);

    const busy = await rt.createWorkspace({ label: 'busy' });
    const cmd = await busy.run({ exec: fixture('ignore-term.sh') });
    await waitForOutput(busy, cmd.id, 'ready');
    const busyStates = statesOf(busy);
    assert.deepEqual(await busy.stop({ graceMs: 200 }), { reaped: 1, escaped: [] });
    assert.deepEqual(busyStates, [{ reaping: 'terminating' }, { reaping: 'killing' }, 'stopped']);
    assert.deepEqual(await cmd.exited, { code: null, signal: 'SIGKILL', status: 137 });
  });

  test('a shutdown with a stateDir: idle workspaces stop at once, a running command gets SIGTERM, the grace, SIGKILL; all come back', async () => {
    const dir = stateDir();
    const marker = `shuma-idle-stop-${process.pid}`;
    const rt1 = await createRuntime({ stateDir: dir, workers: 2 });
    const idle = await Promise.all(Array.from({ length: 40 }, (_, i) => rt1.createWorkspace({ label: `idle-${i}` })));
    const idleStates = idle.map(statesOf);
    const busy = await rt1.createWorkspace({ label: 'busy' });
    // Ignores SIGTERM: only the SIGKILL after the grace ends it.
    const cmd = await busy.run({ exec: 'sh', argv: ['-c', `trap '' TERM; echo ready; while :; do sleep 1; done; : ${marker}`], label: 'stubborn' });
    await waitForOutput(busy, cmd.id, 'ready');
    const busyStates = statesOf(busy);
    const shutdownStarted = Date.now();
    await rt1.shutdown({ graceMs: 300 });
    for (const states of idleStates) assert.deepEqual(states, ['stopped']);
    // Each ends as its own STOP step ends it (machines/workspace-shutdown.ts): its own facts, the stop's.
    for (const ws of idle) {
      const { status, context } = ws.getSnapshot();
      assert.equal(status, 'done');
      assert.deepEqual({ id: context.id, label: context.label, stopReason: context.stopReason, reaped: context.reaped, graceMs: context.graceMs }, { id: ws.id, label: ws.label, stopReason: 'shutdown', reaped: 0, graceMs: 300 });
      assert.ok(typeof context.stoppedAt === 'number' && context.stoppedAt >= shutdownStarted && context.stoppedAt === context.stampedAt);
      assert.ok(typeof context.createdAt === 'number' && context.createdAt < shutdownStarted);
    }
    assert.deepEqual(busyStates, [{ reaping: 'terminating' }, { reaping: 'killing' }, 'stopped']);
    assert.deepEqual(await cmd.exited, { code: null, signal: 'SIGKILL', status: 137 });
    assert.equal(isAlive(cmd.pid), false);
    assert.deepEqual(processesMentioning(marker), [], 'shutdown stops everything');

    // The state saved before the stops brings every workspace back, and names the run the shutdown ended.
    const rt2 = await createRuntime({ stateDir: dir, workers: 1 });
    try {
      const listed = await rt2.listWorkspaces();
      assert.deepEqual(listed.map((ws) => ws.label).sort(), [...idle.map((ws) => ws.label), 'busy'].sort());
      for (const ws of listed) assert.equal(ws.state, 'running', `${ws.label} comes back running`);
      const restored = rt2.workspace(listed.find((ws) => ws.label === 'busy')!.id)!;
      const stubborn = (await restored.commands()).find((c) => c.label === 'stubborn');
      assert.ok(stubborn, 'the run the shutdown ended is listed');
      assert.deepEqual({ alive: stubborn.alive, exitSignal: stubborn.exitSignal, pid: stubborn.pid }, { alive: false, exitSignal: 'SIGKILL', pid: cmd.pid });
    } finally {
      await rt2.shutdown({ graceMs: 0 });
    }
    assert.deepEqual(processesMentioning(marker), []);
  });
});
