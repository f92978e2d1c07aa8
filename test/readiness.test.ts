// Up is not ready: a command's readiness probe (exec, tcp, http, a line on stdout, sd_notify),
// its interval on the manual clock, and a liveness failure while ready ending the run as
// `unhealthy`, a failure its restart policy sees.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/testing/index.js';
import type { ActorSnapshot, Command, Runtime, Workspace } from '../src/index.js';
import { fixture, isAlive, startRuntime, waitFor, waitForOutput, nestedStateOf as state, untilState as until, freePort } from './helpers.js';

describe('readiness probes on the manual clock', () => {
  const clock = new ManualClock();
  let rt: Runtime;
  let dir: string;
  before(async () => {
    rt = await startRuntime({ clock, statsIntervalMs: 0 });
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function service(ws: Workspace, ready: object, restart?: object) {
    dir = await mkdtemp(path.join(tmpdir(), 'shuma-ready-'));
    const port = await freePort();
    const cmd = await ws.run({ exec: process.execPath, argv: [fixture('service.mjs'), String(port), dir], label: 'web', ready: ready as never, ...(restart ? { restart: restart as never } : {}) });
    return { cmd, port, dir };
  }

  test('tcp: up until the port accepts, then ready; probes wait for the clock', async () => {
    const ws = await rt.createWorkspace({ label: 'tcp' });
    const port = await freePort();
    dir = await mkdtemp(path.join(tmpdir(), 'shuma-ready-'));
    const cmd = await ws.run({ exec: process.execPath, argv: [fixture('service.mjs'), String(port), dir], label: 'web', ready: { tcp: port, intervalMs: 500 } });
    await until(cmd, 'up');
    // The port is closed: a probe fails, counted, not acted on.
    await clock.advance(500);
    const failed = await waitFor(cmd.subscribe.bind(cmd), (s) => Number(s.context.probeFailures) === 1, 'one failed probe');
    assert.equal(state(failed), 'up');
    assert.match(String(failed.context.probeDetail), /ECONNREFUSED/);
    await writeFile(path.join(dir, 'open'), '');
    await waitForOutput(ws, cmd.id, 'listening');
    // Nothing probes until the clock moves: still up.
    assert.equal(state(cmd.getSnapshot()), 'up');
    await clock.advance(500);
    const ready = await until(cmd, 'running');
    assert.match(String(ready.context.probeDetail), /accepted/);
    const trail = (await ws.why(cmd.id)).map((e) => e.text);
    assert.ok(trail.some((t) => /^ready/.test(t)), `why() says it became ready: ${trail.join(' | ')}`);
    await ws.stop({ graceMs: 0 });
  });

  test('http: a liveness failure while ready ends the run as unhealthy, and the restart policy relaunches it', async () => {
    const ws = await rt.createWorkspace({ label: 'http' });
    const port = await freePort();
    dir = await mkdtemp(path.join(tmpdir(), 'shuma-ready-'));
    await writeFile(path.join(dir, 'open'), '');
    const cmd = await ws.run({
      exec: process.execPath,
      argv: [fixture('service.mjs'), String(port), dir],
      label: 'web',
      ready: { http: `http://127.0.0.1:${port}/health`, intervalMs: 100, failureThreshold: 2 },
      restart: { onFailure: true, backoffMs: 1000 },
    });
    await waitForOutput(ws, cmd.id, 'listening');
    await clock.advance(100);
    await until(cmd, 'running');
    await writeFile(path.join(dir, 'sick'), '');
    await clock.advance(100);
    await waitFor(cmd.subscribe.bind(cmd), (s) => Number(s.context.probeFailures) === 1, 'a failed liveness probe');
    assert.equal(state(cmd.getSnapshot()), 'running', 'one failure is below the threshold');
    await clock.advance(100);
    // The second failure in a row: SIGTERM; service.mjs exits 0 on it, still a failure.
    const backoff = await until(cmd, 'backoff', 'backoff after being unhealthy');
    assert.deepEqual(backoff.context.lastExit, { code: 0, signal: null, status: 0, reason: 'unhealthy' });
    const info = (await ws.commands()).find((c) => c.id === cmd.id)!;
    assert.equal(info.reason, 'unhealthy');
    assert.equal(isAlive(cmd.pid), false);
    const trail = (await ws.why(cmd.id)).map((e) => e.text);
    assert.ok(trail.some((t) => /unhealthy/.test(t)), `why() says unhealthy: ${trail.join(' | ')}`);
    await ws.stop({ graceMs: 0 });
  });

  test('line: ready at the first stdout line matching the pattern, without the clock', async () => {
    const ws = await rt.createWorkspace({ label: 'line' });
    const { cmd, dir: d } = await service(ws, { line: 'listening on \\d+' });
    await until(cmd, 'up');
    await writeFile(path.join(d, 'open'), '');
    const ready = await until(cmd, 'running');
    assert.match(String(ready.context.probeDetail), /stdout: listening on \d+/);
    await ws.stop({ graceMs: 0 });
  });

  test('exec: ready when the probe program exits 0, run in the command\'s cwd', async () => {
    const ws = await rt.createWorkspace({ label: 'exec' });
    dir = await mkdtemp(path.join(tmpdir(), 'shuma-ready-'));
    const cmd = await ws.run({ exec: fixture('forever.sh'), cwd: dir, ready: { exec: ['test', '-e', 'flag'], intervalMs: 50 } });
    await clock.advance(50);
    await waitFor(cmd.subscribe.bind(cmd), (s) => Number(s.context.probeFailures) === 1, 'a failed exec probe');
    await writeFile(path.join(dir, 'flag'), '');
    await clock.advance(50);
    await until(cmd, 'running');
    await ws.stop({ graceMs: 0 });
  });

  test('notify: READY=1 on $NOTIFY_SOCKET (systemd-notify) makes it ready', async () => {
    const ws = await rt.createWorkspace({ label: 'notify' });
    dir = await mkdtemp(path.join(tmpdir(), 'shuma-ready-'));
    const gate = path.join(dir, 'go');
    const cmd = await ws.run({ exec: fixture('notify-ready.sh'), argv: [gate], ready: { notify: true } });
    await until(cmd, 'up');
    await writeFile(gate, '');
    const ready = await until(cmd, 'running');
    assert.match(String(ready.context.probeDetail), /READY=1/);
    await ws.stop({ graceMs: 0 });
  });

  test('a command without a probe is ready once spawned', async () => {
    const ws = await rt.createWorkspace({ label: 'plain' });
    const cmd = await ws.run({ exec: fixture('forever.sh') });
    await until(cmd, 'running');
    await ws.stop({ graceMs: 0 });
  });
});

describe('readiness specs that cannot work', () => {
  let rt: Runtime;
  before(async () => {
    rt = await startRuntime();
  });
  const bad: Array<[string, object, RegExp]> = [
    ['two kinds', { tcp: 80, line: 'x' }, /ready must name exactly one of exec, tcp, http, line, notify \(got tcp and line\)/],
    ['no kind', { intervalMs: 10 }, /ready must name exactly one/],
    ['a port out of range', { tcp: 70000 }, /ready\.tcp must be a port number/],
    ['a bad regex', { line: '(' }, /ready\.line is not a valid regular expression/],
    ['a URL that is not http', { http: 'ftp://x' }, /ready\.http must be an http/],
    ['an empty exec', { exec: [] }, /ready\.exec must be a non-empty array/],
    ['a zero threshold', { tcp: 80, failureThreshold: 0 }, /ready\.failureThreshold must be >= 1/],
    ['notify false', { notify: false }, /ready\.notify must be true/],
  ];
  for (const [name, ready, message] of bad) {
    test(`INVALID_SPEC: ${name}`, async () => {
      const ws = await rt.createWorkspace({ label: `bad ${name}` });
      await assert.rejects(ws.run({ exec: fixture('forever.sh'), ready: ready as never }), (e: { code?: string; message?: string }) => {
        assert.equal(e.code, 'INVALID_SPEC');
        assert.match(String(e.message), message);
        return true;
      });
      assert.deepEqual(await ws.commands(), [], 'nothing was started');
      await ws.stop({ graceMs: 0 });
    });
  }
});
