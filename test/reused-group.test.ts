// A run leads a process group of its own, numbered by its pid. Once the run has ended and its
// group is empty, the kernel may give that number to any new process — another workspace's run
// among them, which leads a group of the same number. A workspace that kept listing the old
// group signalled the newcomer's whole group at its stop (before s32, every group a workspace
// ever had stayed listed until its stop). A group kept because members outlived its leader
// is dropped once its number names a new process (s33).
import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, constants, existsSync, writeFileSync } from 'node:fs';
import type { Command, Runtime, Workspace } from '../src/index.js';
import { isAlive, pollUntil, startRuntime, waitGone } from './helpers.js';

const LAST_PID = '/proc/sys/kernel/ns_last_pid';

function canChooseNextPid(): boolean {
  try {
    accessSync(LAST_PID, constants.W_OK);
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}

const skip = canChooseNextPid() ? false : `needs root to choose the next pid (${LAST_PID}): the kernel otherwise reuses a number only after pid_max others`;

let rt: Runtime;
before(async () => {
  rt = await startRuntime();
});
after(() => rt.shutdown({ graceMs: 0 }));

describe('a process group number reused after the run that led it ended', { skip }, () => {
  /** A run of `other` given the pid a finished run of `first` had (other processes may take it first: tried again). */
  async function runOnReusedPid(first: Workspace, other: Workspace): Promise<Command> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const ended = await first.run({ exec: '/bin/true' });
      await ended.exited;
      writeFileSync(LAST_PID, String(ended.pid - 1));
      const next = await other.run({ exec: '/bin/sleep', argv: ['1000'] });
      if (next.pid === ended.pid) return next;
      await other.stopCommand(next.id, { graceMs: 0 });
    }
    throw new Error('no run was given a reused pid in 50 tries');
  }

  test("a workspace's stop leaves alone another workspace's run that was given the number of one of its ended runs", async () => {
    const first = await rt.createWorkspace({ label: 'first' });
    const other = await rt.createWorkspace({ label: 'other' });
    try {
      const newcomer = await runOnReusedPid(first, other);
      const result = await first.stop({ graceMs: 0 });
      assert.equal(result.reaped, 0, 'the first workspace had nothing running');
      assert.ok(isAlive(newcomer.pid), `the other workspace's run (pid ${newcomer.pid}) was signalled by the first workspace's stop`);
      const info = (await other.commands()).find((c) => c.id === newcomer.id);
      assert.equal(info?.alive, true);
    } finally {
      await other.stop({ graceMs: 0 });
    }
  });
});

describe('a group kept after its leader ended, emptied later, its number reused', { skip }, () => {
  test("a workspace's stop and stats() leave alone the run given the number of a group it had kept", async () => {
    const first = await rt.createWorkspace({ label: 'kept-group' });
    const other = await rt.createWorkspace({ label: 'newcomer' });
    try {
      let newcomer: Command | null = null;
      for (let attempt = 0; attempt < 50 && !newcomer; attempt++) {
        // The leader ends at once; the sleep it started keeps its group (and its number) alive.
        const leader = await first.run({ exec: '/bin/sh', argv: ['-c', 'sleep 1000 & echo $!'] });
        await leader.exited;
        const member = Number(await pollUntil(async () => (await first.logs(leader.id)).toString().trim(), (text) => text.length > 0, 'the member pid'));
        // The group empties behind the runtime's back: only now may its number go to someone else.
        process.kill(member, 'SIGKILL');
        // Until init reaps it, the zombie still holds the group's number.
        await pollUntil(async () => existsSync(`/proc/${member}`), (exists) => !exists, `member ${member} reaped by init`);
        writeFileSync(LAST_PID, String(leader.pid - 1));
        const next = await other.run({ exec: '/bin/sleep', argv: ['1000'] });
        if (next.pid === leader.pid) newcomer = next;
        else await other.stopCommand(next.id, { graceMs: 0 });
      }
      assert.ok(newcomer, 'no run was given a reused pid in 50 tries');
      // A sample looks for group members in all of /proc once in 10 (proc-sampler.ts): 10 samples meet one.
      for (let sample = 0; sample < 10; sample++) {
        assert.equal((await first.stats()).processes, 0, "the first workspace's stats() counted the newcomer's group as its own");
      }
      await first.stop({ graceMs: 0 });
      assert.ok(isAlive(newcomer.pid), `the other workspace's run (pid ${newcomer.pid}) was signalled by the first workspace's stop`);
      assert.equal((await other.commands()).find((c) => c.id === newcomer!.id)?.alive, true);
    } finally {
      await other.stop({ graceMs: 0 });
    }
  });
});

describe("a run's process group that outlives its leader", () => {
  test("a run's group that outlives it (a member left in it) is still signalled by the stop", async () => {
    const ws = await rt.createWorkspace({ label: 'lingering' });
    // The leader ends at once; the sleep it started stays in its group.
    const cmd = await ws.run({ exec: '/bin/sh', argv: ['-c', 'sleep 1000 & echo $!'] });
    await cmd.exited;
    const said = await pollUntil(async () => (await ws.logs(cmd.id)).toString().trim(), (text) => text.length > 0, 'the member pid');
    const member = Number(said);
    assert.ok(isAlive(member), `member ${member} alive after its leader ended`);
    await ws.stop({ graceMs: 0 });
    await waitGone(member);
  });
});
