import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ulid } from 'ulid';
import { ManualClock } from '../src/testing/index.js';
import { fixture, isAlive, startRuntime, stateOf, waitFor, waitForOutput } from './helpers.js';

describe('workspaces', () => {
  test('create → running, listed with label, command count and uptime (seed 1, 5)', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'build' });
    assert.match(ws.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.equal(ws.label, 'build');
    assert.deepEqual(ws.warnings, []);
    assert.equal(ws.getSnapshot().value, 'running');
    assert.equal(ws.getSnapshot().status, 'active');
    assert.equal(rt.workspace(ws.id), ws);
    const cmd = await ws.run({ exec: '/bin/true' });
    await cmd.exited;
    const [info, ...rest] = await rt.listWorkspaces();
    assert.equal(rest.length, 0);
    assert.equal(info?.id, ws.id);
    assert.equal(info?.label, 'build');
    assert.equal(info?.state, 'running');
    assert.equal(info?.commands, 1);
    assert.ok(info!.uptimeMs >= 0);
  });

  test('what a spec asks and cannot be applied is a warning, never silence (seed 1)', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'unmeasured', quota: { memory: 'kill' } });
    assert.equal(ws.warnings.length, 1);
    assert.match(ws.warnings[0]!, /quota\.memory \('kill'\) has nothing to compare with: set limits\.memoryBytes/);
    const cmd = await ws.run({ exec: '/bin/true' });
    assert.equal((await cmd.exited).status, 0);
  });

  test('createWorkspace with a given ULID keeps it (seed 2)', async () => {
    const rt = await startRuntime();
    const id = ulid();
    const ws = await rt.createWorkspace({ label: 'kept' }, { id });
    assert.equal(ws.id, id);
    assert.equal(rt.workspace(id), ws);
    await assert.rejects(rt.createWorkspace({ label: 'twin' }, { id }), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(rt.createWorkspace({ label: 'bad' }, { id: 'not-a-ulid' }), { code: 'INVALID_ARGUMENT' });
    assert.equal((await rt.listWorkspaces()).length, 1);
  });

  test('a TTL stops the workspace and its processes when it runs out (seed 4)', async () => {
    const clock = new ManualClock();
    const rt = await startRuntime({ clock });
    const ws = await rt.createWorkspace({ label: 'ephemeral', ttlMs: 60_000 });
    assert.equal(ws.getSnapshot().context.ttlDeadline, clock.now() + 60_000);
    const cmd = await ws.run({ exec: fixture('forever.sh') });
    await waitForOutput(ws, cmd.id, 'ready');
    await clock.advance(59_999);
    assert.equal(ws.getSnapshot().value, 'running');
    const stopped = waitFor(ws.subscribe.bind(ws), (s) => s.value === 'stopped', 'the TTL stop');
    await clock.advance(1);
    const final = await stopped;
    assert.equal(final.context.stopReason, 'ttl');
    assert.equal(final.context.reaped, 1);
    assert.equal(isAlive(cmd.pid), false);
    assert.equal(rt.workspace(ws.id), undefined);
    assert.deepEqual(await rt.listWorkspaces(), []);
  });

  test('a TTL on the real clock stops the workspace (seed 4)', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'short', ttlMs: 50 });
    const final = await waitFor(ws.subscribe.bind(ws), (s) => stateOf(s) === 'stopped', 'the TTL stop');
    assert.equal(final.context.stopReason, 'ttl');
  });

  test('stop returns how many processes it reaped and removes the workspace (seed 6)', async () => {
    const rt = await startRuntime();
    const ws = await rt.createWorkspace({ label: 'two' });
    const a = await ws.run({ exec: fixture('forever.sh') });
    const b = await ws.run({ exec: fixture('forever.sh') });
    const done = await ws.run({ exec: '/bin/true' });
    await done.exited;
    await Promise.all([waitForOutput(ws, a.id, 'ready'), waitForOutput(ws, b.id, 'ready')]);
    const seen: string[] = [];
    // The states passed through, in order: a state's context may change more than once (each exit).
    ws.subscribe((s) => {
      if (seen.at(-1) !== stateOf(s)) seen.push(stateOf(s));
    });
    const result = await ws.stop({ graceMs: 500 });
    assert.equal(result.reaped, 2);
    assert.deepEqual(result.escaped, []);
    assert.deepEqual(seen, ['reaping', 'stopped']);
    assert.equal((await a.exited).signal, 'SIGTERM');
    assert.equal((await b.exited).signal, 'SIGTERM');
    assert.equal(rt.workspace(ws.id), undefined);
    assert.equal((await rt.health()).aliveWorkspaces, 0);
  });
});
