import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ActorSnapshot } from '../src/index.js';
import { fixture, isAlive, startRuntime } from './helpers.js';

// "The user's promises settle ahead of the actors" (issue 12): run() resolved from the host and
// `exited` from the reaper while the command actor heard the same facts a round trip later, so
// why() straight after them said less than the promise. Each promise now settles once the actor
// knows what it says. Checked many times in a row: a race shows up in a loop, not once. The
// suite runs on both spawners (npm test, npm run test:node-spawner).

const ROUNDS = 300;
const STOP_ROUNDS = 150;

function stateOf(snapshot: ActorSnapshot | null): string {
  if (!snapshot) return '(none)';
  return typeof snapshot.value === 'string' ? snapshot.value : (Object.keys(snapshot.value)[0] ?? '');
}

describe('one answer everywhere: a promise settles when the actor knows what it says', () => {
  test(`after await ws.run(): the actor runs that run and why() says spawned (${ROUNDS} times)`, async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'one-answer-run' });
    for (let round = 0; round < ROUNDS; round++) {
      const cmd = await ws.run({ exec: 'true', label: `true-${round}` });
      const snapshot = cmd.getSnapshot();
      assert.notEqual(stateOf(snapshot), 'starting', `round ${round}: the actor is still starting`);
      assert.notEqual(snapshot, null, `round ${round}: no snapshot of the command actor`);
      assert.equal(snapshot!.context.runId, cmd.id, `round ${round}: the actor's run is not the one run() returned`);
      const trail = (await ws.why(cmd.id)).map((entry) => entry.text);
      assert.ok(trail.some((text) => text.startsWith('spawned')), `round ${round}: why() has no "spawned": ${JSON.stringify(trail)}`);
      await cmd.exited;
    }
    await ws.stop({ graceMs: 0 });
  });

  test(`after await cmd.exited: why() has the exit and commands() shows it ended (${ROUNDS} times)`, async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'one-answer-exit' });
    for (let round = 0; round < ROUNDS; round++) {
      const status = round % 3;
      const cmd = await ws.run({ exec: 'sh', argv: ['-c', `exit ${status}`], label: `exit-${round}` });
      const exit = await cmd.exited;
      assert.equal(exit.status, status);
      const trail = (await ws.why(cmd.id)).map((entry) => entry.text);
      assert.ok(trail.includes(`exited ${status}`), `round ${round}: why() has no "exited ${status}": ${JSON.stringify(trail)}`);
      assert.equal(stateOf(cmd.getSnapshot()), 'exited', `round ${round}: the actor has not heard the exit`);
      const info = (await ws.commands()).find((c) => c.id === cmd.id);
      assert.ok(info, `round ${round}: commands() does not list the run`);
      assert.equal(info.alive, false, `round ${round}: commands() says it is alive`);
      assert.equal(info.exitStatus, status, `round ${round}: commands() has another status`);
    }
    await ws.stop({ graceMs: 0 });
  });

  test(`a supervised command restarted at once: after await cmd.exited, why() has that exit (${ROUNDS / 3} times)`, async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'one-answer-restart' });
    for (let round = 0; round < ROUNDS / 3; round++) {
      // No backoff: the actor goes from running to restarting in one step, and asks for the next run.
      const cmd = await ws.run({ exec: 'sh', argv: ['-c', 'exit 7'], restart: { onFailure: true, maxRestarts: 1, backoffMs: 0 } });
      await cmd.exited;
      const trail = (await ws.why(cmd.id)).map((entry) => entry.text);
      assert.ok(trail.includes('exited 7'), `round ${round}: why() has no "exited 7": ${JSON.stringify(trail)}`);
      const snapshot = cmd.getSnapshot()!;
      assert.ok(
        snapshot.context.runId !== cmd.id || stateOf(snapshot) !== 'running',
        `round ${round}: the actor still runs the run whose exit was announced`,
      );
      const info = (await ws.commands()).find((c) => c.id === cmd.id);
      assert.equal(info?.alive, false, `round ${round}: commands() says it is alive`);
    }
    await ws.stop({ graceMs: 0 });
  });

  // run() and `exited` settle from the host; the reads of the actor wait until it caught up
  // (core/caught-up.ts). Each read alone, first, so none profits from another's wait.
  test(`after await ws.run(): why() alone, first, says spawned; after await cmd.exited, getSnapshot() alone says exited (${ROUNDS} times)`, async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'one-answer-reads' });
    for (let round = 0; round < ROUNDS; round++) {
      const cmd = await ws.run({ exec: 'true', label: `true-${round}` });
      const trail = (await ws.why(cmd.id)).map((entry) => entry.text);
      assert.ok(trail.some((text) => text.startsWith('spawned')), `round ${round}: why() has no "spawned": ${JSON.stringify(trail)}`);
      await cmd.exited;
      const snapshot = cmd.getSnapshot();
      assert.equal(stateOf(snapshot), 'exited', `round ${round}: getSnapshot() does not show the exit`);
      assert.equal(snapshot!.context.runId, cmd.id, `round ${round}: getSnapshot() names another run`);
    }
    await ws.stop({ graceMs: 0 });
  });

  test(`after await ws.restartCommand() of an ended command: getSnapshot() shows the new actor's run, not the ended one (${ROUNDS / 3} times)`, async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'one-answer-relaunch' });
    const first = await ws.run({ exec: 'true', label: 'again' });
    await first.exited;
    let previous = first.id;
    for (let round = 0; round < ROUNDS / 3; round++) {
      const cmd = await ws.restartCommand('again');
      assert.notEqual(cmd.id, previous, `round ${round}: restartCommand() returned the old run`);
      const snapshot = cmd.getSnapshot();
      assert.equal(snapshot?.context.runId, cmd.id, `round ${round}: getSnapshot() names run ${String(snapshot?.context.runId)}, not the new one`);
      await cmd.exited;
      assert.equal(stateOf(cmd.getSnapshot()), 'exited', `round ${round}: getSnapshot() does not show the new run's exit`);
      previous = cmd.id;
    }
    await ws.stop({ graceMs: 0 });
  });

  test('getSnapshot() inside a command observer answers at once with what is being told (it cannot overtake the batch)', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'one-answer-observer' });
    const cmd = await ws.run({ exec: fixture('forever.sh') });
    const seen: Array<[string, string]> = [];
    const ended = new Promise<void>((resolve) => {
      cmd.subscribe((snapshot) => {
        // The read inside the observer sees the snapshot being delivered, never a later one.
        seen.push([stateOf(snapshot), stateOf(cmd.getSnapshot())]);
        if (snapshot.status !== 'active') resolve();
      });
    });
    await ws.stopCommand(cmd.id, { graceMs: 0 });
    await ended;
    assert.ok(seen.length >= 1, 'the observer saw the stop');
    for (const [delivered, read] of seen) assert.equal(read, delivered);
    assert.equal(stateOf(cmd.getSnapshot()), 'stopped');
    await ws.stop({ graceMs: 0 });
  });

  test(`after await ws.stop(): listWorkspaces() no longer has it, nor its process (${STOP_ROUNDS} times)`, async () => {
    const rt = await startRuntime();
    for (let round = 0; round < STOP_ROUNDS; round++) {
      const ws = await rt.createWorkspace({ label: `one-answer-stop-${round}` });
      const cmd = await ws.run({ exec: fixture('forever.sh') });
      const result = await ws.stop({ graceMs: round % 2 === 0 ? 0 : 1000 });
      assert.equal(result.reaped, 1, `round ${round}`);
      const listed = (await rt.listWorkspaces()).map((info) => info.id);
      assert.ok(!listed.includes(ws.id), `round ${round}: listWorkspaces() still has the stopped workspace`);
      assert.equal(rt.workspace(ws.id), undefined, `round ${round}: workspace(id) still finds it`);
      assert.equal(isAlive(cmd.pid), false, `round ${round}: its process outlived stop()`);
      await cmd.exited;
    }
  });
});
