// One command at a time, from the public API: stop, restart and remove one command while its
// workspace and the other commands go on; restart policy `always`; labels unique per workspace.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isShumaError } from '../src/index.js';
import { fixture, isAlive, reach, startRuntime, stateOf, waitForOutput, waitGone } from './helpers.js';

async function rejectsWith(promise: Promise<unknown>, code: string, message?: RegExp): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isShumaError(error), `not a ShumaError: ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (message) assert.match(error.message, message);
    return error;
  }
  throw new Error(`expected ${code}, but it resolved`);
}

describe('one command at a time', () => {
  test('stopCommand by label stops that command only; supervision of it ends; the workspace goes on', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'ops-stop' });
    const a = await ws.run({ exec: fixture('forever.sh'), label: 'a', restart: { onFailure: true, backoffMs: 1 } });
    const b = await ws.run({ exec: fixture('forever.sh'), label: 'b' });
    const result = await ws.stopCommand('a', { graceMs: 2000 });
    assert.deepEqual(result, { reaped: 1 });
    assert.equal(isAlive(a.pid), false);
    assert.equal(stateOf(a.getSnapshot()), 'stopped', 'a stopped command is not relaunched, even on-failure');
    assert.equal((await a.exited).signal, 'SIGTERM');
    assert.ok(isAlive(b.pid));
    assert.equal(stateOf(ws.getSnapshot()), 'running');
    const runs = await ws.commands();
    assert.equal(runs.filter((r) => r.commandKey === a.commandKey).length, 1, 'no relaunch of a');
    // Stopping it again reaps nothing; the why trail says it was asked.
    assert.deepEqual(await ws.stopCommand(a.id), { reaped: 0 });
    assert.ok((await ws.why(a.commandKey)).some((e) => e.text === 'stop requested'));
  });

  test('a command that ignores SIGTERM is killed when its grace is over; graceMs 0 kills at once', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'ops-grace' });
    const stubborn = await ws.run({ exec: fixture('ignore-term.sh'), label: 'stubborn' });
    await waitForOutput(ws, stubborn.id, 'ready');
    assert.deepEqual(await ws.stopCommand('ops-grace/stubborn', { graceMs: 100 }), { reaped: 1 });
    assert.equal((await stubborn.exited).signal, 'SIGKILL');
    const quick = await ws.run({ exec: fixture('forever.sh'), label: 'quick' });
    assert.deepEqual(await ws.stopCommand(quick.commandKey, { graceMs: 0 }), { reaped: 1 });
    assert.equal((await quick.exited).signal, 'SIGKILL');
  });

  test('a command in backoff stops without a relaunch and without a process to reap', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'ops-backoff' });
    const crasher = await ws.run({ exec: '/bin/false', label: 'crasher', restart: { onFailure: true, backoffMs: 60_000 } });
    await reach(crasher, ['backoff']);
    assert.deepEqual(await ws.stopCommand('crasher'), { reaped: 0 });
    assert.equal(stateOf(crasher.getSnapshot()), 'stopped');
    assert.equal((await ws.commands()).length, 1);
  });

  test('restartCommand: a running command gets a new run now, an ended one runs again, counting on', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'ops-restart' });
    const first = await ws.run({ exec: fixture('forever.sh'), label: 'svc' });
    const second = await ws.restartCommand('svc');
    assert.notEqual(second.id, first.id);
    assert.notEqual(second.pid, first.pid);
    assert.equal(second.commandKey, first.commandKey);
    assert.equal((await first.exited).signal, 'SIGTERM');
    assert.ok(isAlive(second.pid));
    assert.equal(second.getSnapshot()?.context.restarts, 1);
    assert.ok((await ws.why(first.commandKey)).some((e) => e.text === 'restart requested'));

    const once = await ws.run({ exec: '/bin/sh', argv: ['-c', 'echo once'], label: 'once' });
    await reach(once, ['exited']);
    const again = await ws.restartCommand(once.id);
    assert.equal((await again.exited).status, 0);
    const runs = (await ws.commands()).filter((r) => r.commandKey === once.commandKey);
    assert.deepEqual(runs.map((r) => r.restarts), [0, 1]);

    const waiting = await ws.run({ exec: '/bin/false', label: 'waiting', restart: { onFailure: true, backoffMs: 60_000 } });
    await reach(waiting, ['backoff']);
    const now = await ws.restartCommand('waiting');
    assert.notEqual(now.id, waiting.id, 'a restart does not wait out the backoff');
    await ws.stopCommand('waiting', { graceMs: 0 });
  });

  test('removeCommand stops and forgets it: no longer listed, its label free again', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'ops-remove' });
    const gone = await ws.run({ exec: fixture('forever.sh'), label: 'tmp' });
    const kept = await ws.run({ exec: fixture('forever.sh'), label: 'kept' });
    await ws.removeCommand('tmp', { graceMs: 500 });
    await waitGone(gone.pid);
    assert.deepEqual((await ws.commands()).map((r) => r.label), ['kept']);
    await rejectsWith(ws.stopCommand('tmp'), 'COMMAND_NOT_FOUND', /ops-remove.*"tmp"/);
    const reused = await ws.run({ exec: fixture('forever.sh'), label: 'tmp' });
    assert.ok(isAlive(reused.pid));
    assert.ok(isAlive(kept.pid));
  });

  test('a second command with a label already used is refused (INVALID_SPEC naming the first); a derived label is made unique', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'ops-labels' });
    const ticker = await ws.run({ exec: fixture('forever.sh'), label: 'ticker' });
    const error = await rejectsWith(ws.run({ exec: fixture('forever.sh'), label: 'ticker' }), 'INVALID_SPEC', /label "ticker" is already the label of command ops-labels\/ticker/);
    assert.match(error.message, new RegExp(ticker.commandKey));
    assert.equal((await ws.commands()).length, 1, 'nothing was started for the refused run');
    const one = await ws.run({ exec: '/bin/sleep', argv: ['1000'] });
    const two = await ws.run({ exec: '/bin/sleep', argv: ['1000'] });
    assert.deepEqual([one.label, two.label], ['sleep', 'sleep-2']);
    // An ended command keeps its label: restart it, or remove it first.
    await ws.stopCommand('ticker', { graceMs: 0 });
    await rejectsWith(ws.run({ exec: fixture('forever.sh'), label: 'ticker' }), 'INVALID_SPEC');
  });

  test("restart policy 'always' relaunches after a success too, with the same backoff, up to maxRestarts", async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'ops-always' });
    const cmd = await ws.run({ exec: '/bin/true', label: 'ok', restart: { onFailure: false, always: true, backoffMs: 1, maxRestarts: 3 } });
    const final = await reach(cmd, ['exited', 'gaveUp']);
    assert.equal(stateOf(final), 'exited', 'the last success after maxRestarts ends it as exited, not gaveUp');
    const runs = await ws.commands();
    assert.deepEqual(runs.map((r) => [r.restarts, r.exitStatus]), [[0, 0], [1, 0], [2, 0], [3, 0]]);
    const bad = await rejectsWith(ws.run({ exec: '/bin/true', restart: { onFailure: true, always: 'yes' as unknown as boolean } }), 'INVALID_SPEC');
    assert.match(bad.message, /restart\.always must be true or false/);
  });

  test('bad names and bad options are refused with typed errors', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'ops-bad' });
    await rejectsWith(ws.stopCommand('nope'), 'COMMAND_NOT_FOUND');
    await rejectsWith(ws.restartCommand('nope'), 'COMMAND_NOT_FOUND');
    await rejectsWith(ws.removeCommand(''), 'INVALID_ARGUMENT');
    await ws.run({ exec: fixture('forever.sh'), label: 'x' });
    await rejectsWith(ws.stopCommand('x', { graceMs: -1 }), 'INVALID_SPEC');
    await ws.stop({ graceMs: 0 });
    await rejectsWith(ws.restartCommand('x'), 'WORKSPACE_NOT_FOUND');
  });
});
