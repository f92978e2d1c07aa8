// Relaunches on standing orders (standing-orders.ts; on the native spawner, started on the addon's
// relaunch thread: native/relaunch.c) when something around them goes wrong or many run at once.
// What the actor, why(), the process table and /proc say must be what they say without acting
// ahead: the same tests run on child_process, where every relaunch is the host's.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { ActorSnapshot, Command } from '../src/index.js';
import { tapToChild, watchHost } from './ahead-watch.js';
import { capturingLogger, isAlive, processesMentioning, startRuntime, stateOf, untilState, waitFor, waitGone } from './helpers.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'shuma-relaunch-faults-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe('relaunches when things go wrong', () => {
  // Each command's exit watch is found by its pid (native/exit-watch.c exit_watch_find), and
  // each relaunch is armed on it: with many in flight, an exit told to the wrong command would
  // show as a run whose status or output is another command's.
  test('24 commands crash-looping at once, each with its own exit code: every run and every exit is its own command\'s', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'many-relaunching' });
    const commands = 24;
    const restarts = 4;
    const marker = `shuma-many-relaunching-${process.pid}`;
    const cmds: Command[] = [];
    for (let k = 0; k < commands; k++) {
      // Long enough that its relaunch is armed before it exits; its pid and its command in its output.
      cmds.push(await ws.run({ exec: 'sh', argv: ['-c', `echo "$$ cmd-${k}"; sleep 0.05; exit ${10 + k}`, marker], label: `cmd-${k}`, restart: { onFailure: true, backoffMs: 0, maxRestarts: restarts } }));
    }
    await Promise.all(cmds.map((cmd) => untilState(cmd, 'gaveUp', 'its give-up', stateOf)));
    const runs = await ws.commands();
    assert.equal(runs.length, commands * (restarts + 1));
    assert.equal(new Set(runs.map((run) => run.pid)).size, runs.length, 'a pid told twice');
    for (let k = 0; k < commands; k++) {
      const mine = runs.filter((run) => run.label === `cmd-${k}`);
      assert.deepEqual(mine.map((run) => run.restarts).sort(), Array.from({ length: restarts + 1 }, (_, n) => n), `cmd-${k}'s runs`);
      for (const run of mine) {
        assert.equal(run.alive, false);
        assert.equal(run.exitStatus, 10 + k, `cmd-${k} run ${run.restarts}: another command's exit`);
        assert.equal((await ws.logs(run.id)).toString(), `${run.pid} cmd-${k}\n`, `cmd-${k} run ${run.restarts}: another command's process`);
      }
      assert.equal(cmds[k]!.getSnapshot()!.context.restarts, restarts);
      const exits = (await ws.why(cmds[k]!.id)).map((entry) => entry.text).filter((text) => text.startsWith('exited'));
      assert.deepEqual(exits, Array.from({ length: restarts + 1 }, () => `exited ${10 + k}`), `cmd-${k}'s trail`);
    }
    assert.deepEqual(processesMentioning(marker), []);
    await ws.stop({ graceMs: 0 });
  });

  test('a program removed between two runs: each relaunch fails with SPAWN_FAILED ENOENT, why() says so, the command gives up, nothing is left', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'program-removed' });
    const program = path.join(scratch, 'removes-itself');
    // Removed after its run started (its relaunch armed by then, on the native spawner), then fails.
    writeFileSync(program, '#!/bin/sh\nsleep 0.1\nrm -f "$0"\nexit 3\n');
    chmodSync(program, 0o755);
    const cmd = await ws.run({ exec: program, label: 'removed', restart: { onFailure: true, backoffMs: 0, maxRestarts: 2 } });
    const first = cmd.pid;
    // A start refused counts as a failure (command-machine.ts restarting): it backs off and tries again, then gives up.
    const ended = (s: ActorSnapshot | null) => s !== null && (s.status !== 'active' || ['failed', 'gaveUp', 'stopped', 'exited'].includes(stateOf(s)));
    const end = ended(cmd.getSnapshot()) ? cmd.getSnapshot()! : await waitFor(cmd.subscribe.bind(cmd), ended, 'the command\'s end');
    assert.equal(existsSync(program), false);
    assert.equal(stateOf(end), 'gaveUp', JSON.stringify(end.value));
    assert.equal(end.context.restarts, 2);
    // The OS code travels as a field, so a user need not parse the message to tell ENOENT from EACCES.
    const refusal = end.context.spawnError as { code?: string; osCode?: string } | null;
    assert.equal(refusal?.code, 'SPAWN_FAILED', JSON.stringify(refusal));
    assert.equal(refusal?.osCode, 'ENOENT', JSON.stringify(refusal));
    const trail = (await ws.why(cmd.id)).map((entry) => entry.text);
    assert.ok(trail.includes('exited 3'), JSON.stringify(trail));
    // Each refused restart is said as such, with its error, not as the exit before it.
    assert.deepEqual(trail.filter((text) => text.startsWith('exited')), ['exited 3'], JSON.stringify(trail));
    assert.deepEqual(trail.filter((text) => / refused: .*\(ENOENT\)/.test(text)).map((text) => text.split(':')[0]), ['restart 1 refused', 'restart 2 refused'], JSON.stringify(trail));
    assert.ok(trail.includes('gave up after 2 restarts'), JSON.stringify(trail));
    const runs = (await ws.commands()).filter((run) => run.label === 'removed');
    assert.deepEqual(runs.map((run) => run.pid), [first], 'only the first run ever ran');
    assert.equal(isAlive(first), false);
    await ws.stop({ graceMs: 0 });
  });

  // A run started ahead of its actor that exits, unasked, after its workspace began stopping is cut
  // from its chain there (standing-orders.ts exited → cut): it and the runs after it are never
  // told, no read waits for them, and nothing starts after the stop.
  test('a workspace stopped with runs ahead of its actor: the runs that exit unasked are cut, never told, nothing starts after the stop', async (t) => {
    const { logger, records } = capturingLogger('warn');
    const rt = await startRuntime({ logger });
    if ((await rt.health()).spawner !== 'native') return t.skip('child_process does not act ahead: every relaunch waits for the actor');
    for (let round = 0; round < 5; round++) {
      const ws = await rt.createWorkspace({ label: `ahead-cut-at-exit-${round}` });
      const watch = watchHost(rt);
      const heard = tapToChild(rt, 'loop');
      // Sleeps, then fails: as the stop comes, some runs ahead live (killed by it), some have exited.
      const cmd = await ws.run({ exec: 'sh', argv: ['-c', `sleep 0.0${round}5; exit 3`], label: 'loop', restart: { onFailure: true, backoffMs: 0, maxRestarts: 0 } });
      const ahead = 2 + (round % 3);
      await watch.until(() => watch.spawns >= 1 + ahead, `${ahead} runs ahead`);
      const stopping = ws.stop({ graceMs: 0 });
      // The actor's held request (run 1) reaches the host only now, after the stop began.
      watch.release();
      await stopping;
      // (Until the stop reaches the host — a round trip through the actors — the chain may still grow.)
      const spawns = watch.spawns;
      await watch.until(() => watch.pids.length === spawns, 'every spawn done');
      for (const pid of watch.pids) await waitGone(pid);
      assert.equal(watch.spawns, spawns, `round ${round}: a run started after the stop`);
      assert.deepEqual(records.filter((record) => record.msg.includes('did not catch up')), [], `round ${round}: a read waited for a run its actor never asked for`);
      // The actor heard its runs in order, each spawned then exited, up to the stop: none cut is told.
      assert.deepEqual(heard, Array.from({ length: heard.length / 2 }, (_, k) => [`s${k}`, `x${k}`]).flat(), `round ${round}`);
      assert.ok(heard.length >= 2 && heard.length / 2 <= spawns, `round ${round}: ${heard.join(',')} of ${spawns} runs`);
      assert.notEqual(stateOf(cmd.getSnapshot()), 'running');
    }
  });
});
