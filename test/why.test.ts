import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { quotaKilledWorkspace, reach, startRuntime, stateOf, waitFor } from './helpers.js';
import { wrapSpawner } from './wrapped-spawner.js';
import type { Runtime } from '../src/index.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'shuma-why-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A program that fails (exit 3) and removes itself as it goes: every restart of it is refused (ENOENT). */
function selfRemovingProgram(name: string): string {
  const program = path.join(scratch, name);
  writeFileSync(program, '#!/bin/sh\nsleep 0.1\nrm -f "$0"\nexit 3\n');
  chmodSync(program, 0o755);
  return program;
}

/** The refusal of restart `n` of `program`, as the trail says it. */
function refused(n: number, program: string): RegExp {
  const quoted = program.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^restart ${n} refused: SPAWN_FAILED: could not start '${quoted}' \\(ENOENT\\)`);
}

/** `trail` matches `expected` line by line (a string exactly, a RegExp by match). */
function assertTrail(trail: string[], expected: Array<string | RegExp>): void {
  const ok = trail.length === expected.length && expected.every((e, i) => (typeof e === 'string' ? trail[i] === e : e.test(trail[i]!)));
  assert.ok(ok, `trail:\n  ${trail.join('\n  ')}\nexpected:\n  ${expected.map(String).join('\n  ')}`);
}

/**
 * The spawns after the first `free` wait (nothing relaunched ahead: every restart comes here)
 * until `release()`; `asked` resolves when the first of them comes.
 */
function holdSpawnsAfter(rt: Runtime, free: number): { asked: Promise<void>; release(): void; count(): number; unwrap(): void } {
  let spawns = 0;
  let heard!: () => void;
  const asked = new Promise<void>((resolve) => (heard = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const unwrap = wrapSpawner(
    rt,
    async (order, real) => {
      if (spawns++ >= free) {
        heard();
        await released;
      }
      return real.spawn(order);
    },
    { actsAhead: false },
  );
  return { asked, release, count: () => spawns, unwrap };
}

/** `a` (a program that removes itself, so its restarts are refused) piped into `cat`, restarted at once up to twice. */
function runRefusingPipeline(rt: Runtime, workspace: string, program: string) {
  return rt.runPipeline({
    label: 'p',
    workspace,
    nodes: [
      { label: 'a', exec: program },
      { label: 'c', exec: 'cat' },
    ],
    edges: [{ from: 'a', to: 'c' }],
    restart: { onFailure: true, backoffMs: 0, maxRestarts: 2 },
  });
}

const texts = (entries: Array<{ text: string }>) => entries.map((e) => e.text.replace(/\(pid \d+, run \w+\)/, '(pid …)'));

describe('why(): the causal trail of commands and pipelines', () => {
  test('after a give-up it reads as the cause chain', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'why-giveup' });
    const cmd = await ws.run({ exec: '/bin/false', restart: { onFailure: true, backoffMs: 1, maxRestarts: 1 } });
    await waitFor(cmd.subscribe.bind(cmd), (s) => stateOf(s) === 'gaveUp', 'the give-up');
    assert.deepEqual(texts(await ws.why(cmd.id)), [
      'spawned (pid …)',
      'exited 1',
      'backoff 1 ms (restart 1)',
      'restarting (restart 1)',
      'spawned (pid …)',
      'exited 1',
      'gave up after 1 restarts',
    ]);
    // By commandKey too, and the entries carry their time.
    const byKey = await ws.why(cmd.commandKey);
    assert.equal(byKey.length, 7);
    assert.ok(byKey.every((e, i) => i === 0 || e.at >= byKey[i - 1]!.at));
    await assert.rejects(ws.why('nope'), { code: 'COMMAND_NOT_FOUND' });
  });

  // systemd's status says a start that failed (status=203/EXEC, "Failed to execute …: No such
  // file or directory"), not the exit before it: so does the trail of a restart refused.
  test('a restart refused (its program removed) says so and why, with or without a backoff; the give-up names the refusal, not the exit before it', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'why-refused' });
    for (const backoffMs of [0, 1]) {
      const program = selfRemovingProgram(`refused-${backoffMs}`);
      const cmd = await ws.run({ exec: program, label: `refused-${backoffMs}`, restart: { onFailure: true, backoffMs, maxRestarts: 2 } });
      await waitFor(cmd.subscribe.bind(cmd), (s) => stateOf(s) === 'gaveUp', 'the give-up');
      const trail = texts(await ws.why(cmd.id));
      assertTrail(
        trail,
        backoffMs === 0
          ? ['spawned (pid …)', 'exited 3', 'restarting (restart 1)', refused(1, program), 'restarting (restart 2)', refused(2, program), 'gave up after 2 restarts']
          : ['spawned (pid …)', 'exited 3', 'backoff 1 ms (restart 1)', 'restarting (restart 1)', refused(1, program), /^backoff \d+ ms$/, 'restarting (restart 2)', refused(2, program), 'gave up after 2 restarts'],
      );
    }
  });

  // The stop came while restart 1's spawn was in flight, and that spawn was refused: the trail
  // says the refusal before "stopped", not the exit before it (which the context still holds).
  test('a restart refused after a stop began says the refusal, not the exit before it', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'why-refused-stopping' });
    const program = selfRemovingProgram('refused-stopping');
    // The restart's spawn waits until the stop is heard.
    const held = holdSpawnsAfter(rt, 1);
    const cmd = await ws.run({ exec: program, label: 'refused-stopping', restart: { onFailure: true, backoffMs: 0, maxRestarts: 2 } });
    await held.asked;
    const stopping = ws.stopCommand(cmd.id, { graceMs: 0 });
    await reach(cmd, ['stopping']);
    held.release();
    await stopping;
    const end = await reach(cmd, ['stopped']);
    held.unwrap();
    assert.equal(held.count(), 2, 'no restart after the stop');
    assert.equal((end.context.spawnError as { osCode?: string } | null)?.osCode, 'ENOENT');
    assertTrail(texts(await ws.why(cmd.id)), ['spawned (pid …)', 'exited 3', 'restarting (restart 1)', 'stop requested', refused(1, program), 'stopped']);
  });

  test("a pipeline's restart refused (a node's program removed) says so and why; the give-up names the refusal", async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'why-pipeline-refused' });
    const program = selfRemovingProgram('pipeline-node');
    const p = await runRefusingPipeline(rt, ws.id, program);
    await waitFor(p.subscribe.bind(p), (s) => stateOf(s) === 'gaveUp', 'the give-up');
    // `cat` ends once `a` has: whether the actor saw `a`'s exit alone first is the kernel's business.
    const trail = texts(await p.why()).filter((t) => !t.startsWith('failed while others run'));
    assertTrail(trail, [
      'attempt 0 spawned (a, c)',
      /^failed: (a exited 3, c exited 0|c exited 0, a exited 3)$/, // the order the exits were heard in
      'restarting (restart 1)',
      refused(1, program),
      'restarting (restart 2)',
      refused(2, program),
      'gave up after 2 restarts',
    ]);
  });

  test("a pipeline's restart refused after a stop began says the refusal before \"stopped\"", async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'why-pipeline-refused-stopping' });
    const program = selfRemovingProgram('pipeline-node-stopping');
    // Attempt 0's two nodes pass; restart 1's first node waits until the stop is heard.
    const held = holdSpawnsAfter(rt, 2);
    const p = await runRefusingPipeline(rt, ws.id, program);
    await held.asked;
    const stopping = p.stop({ graceMs: 0 });
    await waitFor(p.subscribe.bind(p), (s) => stateOf(s) === 'stopping', 'the stop heard');
    held.release();
    await stopping;
    if (stateOf(p.getSnapshot()) !== 'stopped') await waitFor(p.subscribe.bind(p), (s) => stateOf(s) === 'stopped', 'stopped');
    held.unwrap();
    const trail = texts(await p.why()).filter((t) => !t.startsWith('failed while others run'));
    assertTrail(trail, ['attempt 0 spawned (a, c)', /^failed: /, 'restarting (restart 1)', 'stop requested', refused(1, program), 'stopped']);
  });

  test('after a quota kill it names the breach', async () => {
    const { ws, a } = await quotaKilledWorkspace('why-quota');
    // The workspace is gone; its commands' trails say why.
    assert.deepEqual(texts(await ws.why(a.id)), [
      'spawned (pid …)',
      'quota breach: nproc: 2 alive > 1 limit → kill',
      'killed by SIGKILL (status 137)',
      'stopped',
    ]);
  });

  test("a pipeline's trail: attempts, failures, backoff, stop", async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'why-pipeline' });
    const p = await rt.runPipeline({
      label: 'p',
      workspace: ws.id,
      nodes: [
        { label: 'f', exec: 'false' },
        { label: 'c', exec: 'cat' },
      ],
      edges: [{ from: 'f', to: 'c' }],
      restart: { onFailure: true, backoffMs: 60_000 },
    });
    await waitFor(p.subscribe.bind(p), (s) => stateOf(s) === 'backoff', 'the backoff');
    await p.stop();
    // Whether `f`'s exit was seen before `cat`'s is the kernel's business: that line may or may not be there.
    const trail = texts(await p.why()).filter((t) => !t.startsWith('failed while others run'));
    assert.deepEqual(trail, [
      'attempt 0 spawned (f, c)',
      'failed: f exited 1, c exited 0',
      'backoff 60000 ms (restart 1)',
      'stop requested',
      'stopped',
    ]);
  });
});
