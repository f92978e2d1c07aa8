// The daemon's directory and socket checks, frames that are not requests, shutdown and restart.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, statSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { decodeFrame, encodeFrame, FrameReader, MAX_RESPONSE_BYTES } from '../src/protocol/control-frames.js';
import type { PsResult, RunResult } from '../src/protocol/control-results.js';
import { fixture, isAlive } from './helpers.js';
import { MAIN, ROOT, cli, cliJson, follow, pollCli, startDaemon, tempDir, waitAllGone } from './daemon-helpers.js';
import { spawn } from 'node:child_process';

/** `shuma daemon` that must refuse to start: its exit code and stderr. */
async function refused(env: NodeJS.ProcessEnv, args: string[] = []): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, 'daemon', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = follow(child);
  const code = await out.exited;
  return { code, stderr: out.stderr() };
}

test('the directory is made 0700 and the socket 0600', async () => {
  const daemon = await startDaemon();
  assert.equal(statSync(daemon.home).mode & 0o777, 0o700);
  assert.equal(statSync(daemon.socket).mode & 0o777, 0o600);
  assert.ok(statSync(daemon.socket).isSocket());
  assert.equal(statSync(daemon.stateDir).mode & 0o777, 0o700);
  assert.equal(await daemon.stop('SIGTERM'), 0, daemon.lines.join('\n') + daemon.stderr());
  assert.equal(existsSync(daemon.socket), false);
});

test('a world-writable directory, a symlinked one and a too-long socket path are refused (exit 2)', async () => {
  const open = path.join(tempDir(), 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  const world = await refused({ ...process.env, SHUMA_HOME: open });
  assert.equal(world.code, 2);
  assert.match(world.stderr, /CONTROL_DIR_INVALID: the socket directory .*\/open has mode 0777: others can write to it and replace the socket; run `chmod 700 .*\/open`/);
  assert.equal(existsSync(path.join(open, 'shuma.sock')), false);

  const real = path.join(tempDir(), 'real');
  mkdirSync(real, { mode: 0o700 });
  const link = path.join(tempDir(), 'link');
  symlinkSync(real, link);
  const linked = await refused({ ...process.env, SHUMA_HOME: link });
  assert.equal(linked.code, 2);
  assert.match(linked.stderr, /CONTROL_DIR_INVALID: the socket directory .*\/link is a symbolic link/);
  assert.equal(existsSync(path.join(real, 'shuma.sock')), false);

  const deep = path.join(tempDir(), 'd'.repeat(60), 'e'.repeat(60));
  const long = await refused({ ...process.env, SHUMA_HOME: deep });
  assert.equal(long.code, 2);
  assert.match(long.stderr, /SOCKET_PATH_TOO_LONG: the socket path .* is 1\d\d bytes; a unix socket path holds at most 107/);
  assert.equal(existsSync(deep), false, 'nothing made');
  const client = await cli(['ps'], { ...process.env, SHUMA_HOME: deep });
  assert.equal(client.code, 2);
});

test('no daemon: exit 3 with how to start one (and a JSON error document with --json)', async () => {
  const env = { ...process.env, SHUMA_HOME: path.join(tempDir(), 'none') };
  const result = await cli(['ps'], env);
  assert.equal(result.code, 3);
  assert.match(result.stderr, /^shuma: NO_DAEMON: no shuma daemon at .*\/none\/shuma\.sock \(no socket there\): start one with `shuma daemon` \(a `shuma run` starts one itself\)\n$/);
  const json = await cli(['health', '--json'], env);
  assert.equal(json.code, 3);
  assert.equal(JSON.parse(json.stdout).error.code, 'NO_DAEMON');
  const socket = await cli(['ps', '--socket', path.join(tempDir(), 'x.sock')], process.env);
  assert.equal(socket.code, 3);
});

/** Writes raw bytes on a fresh connection; resolves with the decoded responses and whether it closed. */
interface Answer {
  kind: string;
  id: number | null;
  ok: boolean;
  error: { code: string; message: string };
}

function raw(socket: string, bytes: Buffer, expect: number): Promise<{ responses: Answer[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socket);
    const reader = new FrameReader(MAX_RESPONSE_BYTES);
    const responses: unknown[] = [];
    let closed = false;
    const done = () => resolve({ responses: responses as Answer[], closed });
    conn.on('data', (chunk) => {
      for (const body of reader.push(chunk)) responses.push(decodeFrame(body));
      if (responses.length >= expect && !closed) {
        conn.end();
      }
    });
    conn.on('close', () => {
      closed = true;
      done();
    });
    conn.on('error', reject);
    conn.write(bytes);
  });
}

test('garbage, a wrong shape, an unknown op, bad arguments and an oversized frame are refused; the daemon keeps serving', async () => {
  const daemon = await startDaemon();
  const header = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const garbage = Buffer.concat([header(5), Buffer.from([0xc1, 0xff, 0x00, 0x13, 0x37])]);
  const bomb = Buffer.concat([header(2), Buffer.from([0xd4, 0x72])]); // msgpackr's record extension
  const frames = Buffer.concat([
    garbage,
    bomb,
    encodeFrame([1, 2, 3]),
    encodeFrame({ id: 7, op: 'format-disk' }),
    encodeFrame({ id: 8, op: 'run', workspace: 'w', spec: { exec: 5 } }),
    encodeFrame({ id: 9, op: 'ps', extra: true }),
    encodeFrame({ id: 10, op: 'ps' }),
  ]);
  const { responses } = await raw(daemon.socket, frames, 7);
  assert.equal(responses.length, 7);
  // Answers come as each request is done, not in order: the ones without an id first.
  const [g, b, shape] = responses.filter((r) => r.id === null);
  const [op, args, extra, ok] = [7, 8, 9, 10].map((id) => responses.find((r) => r.id === id)!) as [Answer, Answer, Answer, Answer];
  assert.ok(g && b && shape);
  assert.deepEqual([g.kind, g.id, g.error.code], ['error', null, 'BAD_REQUEST']);
  assert.match(g.error.message, /byte 0xc1/);
  assert.match(b.error.message, /record extension/);
  assert.match(shape.error.message, /a request must be a map with id and op \(got an array\)/);
  assert.deepEqual([op.id, op.error.code], [7, 'BAD_REQUEST']);
  assert.match(op.error.message, /request.op "format-disk" is not an operation; known: ps, run/);
  // The API's own validator, the API's own error.
  assert.deepEqual([args.id, args.error.code, args.error.message], [8, 'INVALID_SPEC', 'INVALID_SPEC: exec must be a string (got 5)']);
  assert.deepEqual([extra.id, extra.error.code], [9, 'INVALID_ARGUMENT']);
  assert.deepEqual([ok.kind, ok.id, ok.ok], ['result', 10, true]);

  const huge = await raw(daemon.socket, Buffer.concat([header(0xffffffff), Buffer.from('xx')]), 1);
  assert.equal(huge.closed, true);
  assert.match(huge.responses[0]!.error.message, /a frame of 4294967295 bytes is over the 1048576-byte cap/);

  const truncatedThenClosed = await new Promise<void>((resolve) => {
    const conn = net.createConnection(daemon.socket, () => conn.end(Buffer.concat([header(100), Buffer.from('half')])));
    conn.on('close', () => resolve());
    conn.resume();
  });
  assert.equal(truncatedThenClosed, undefined);

  const after = await cliJson<PsResult>(['ps'], daemon.env);
  assert.ok(Array.isArray(after.workspaces));
  assert.equal(await daemon.stop('SIGTERM'), 0);
});

test('a second daemon on a live socket is refused; a stale socket left by a killed daemon is replaced', async () => {
  const first = await startDaemon();
  const second = await refused(first.env);
  assert.equal(second.code, 2);
  assert.match(second.stderr, /DAEMON_RUNNING: a shuma daemon already serves .*shuma\.sock/);
  assert.equal((await cli(['ps'], first.env)).code, 0, 'the first one still serves');

  // SIGKILL: no shutdown, the socket file stays behind with nothing listening.
  assert.equal(await first.stop('SIGKILL'), null);
  assert.equal(existsSync(first.socket), true);
  assert.equal((await cli(['ps'], first.env)).code, 3);
  const next = await startDaemon({ home: first.home });
  assert.equal((await cli(['ps'], next.env)).code, 0);
  assert.equal(await next.stop('SIGTERM'), 0);
});

test('SIGTERM: the daemon exits 0, the socket is removed, no child process is left; a restart restores the workspaces with their ids', async () => {
  const daemon = await startDaemon();
  const a = await cliJson<RunResult>(['run', '-w', 'keep', '--restart', 'on-failure', '--', fixture('forever.sh')], daemon.env);
  const b = await cliJson<RunResult>(['run', '-w', 'also', '--', 'sleep', '1000'], daemon.env);
  const pipe = await cliJson<{ nodes: Array<{ pid: number }> }>(['pipeline', 'run', '-w', 'also', '--', 'sleep', '1000', '|', 'cat'], daemon.env);
  const pids = [a.command.pid, b.command.pid, ...pipe.nodes.map((n) => n.pid)];
  assert.ok(pids.every(isAlive));

  assert.equal(await daemon.stop('SIGTERM'), 0);
  assert.ok(daemon.lines.includes('shuma daemon: stopped'));
  assert.equal(existsSync(daemon.socket), false);
  await waitAllGone(pids);
  for (const pid of pids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });

  const again = await startDaemon({ home: daemon.home });
  assert.match(again.lines[0]!, /2 workspaces restored/);
  const restored = await cliJson<PsResult>(['ps'], again.env);
  assert.deepEqual(
    restored.workspaces.map((w) => [w.label, w.id]).sort(),
    [['also', b.workspace.id], ['keep', a.workspace.id]].sort(),
  );
  // The supervised command starts again, under its command key, as a new process.
  const keep = restored.workspaces.find((w) => w.label === 'keep')!.commands[0]!;
  assert.equal(keep.commandKey, a.command.commandKey);
  const keepRow = (r: PsResult) => r.workspaces.find((w) => w.label === 'keep')!.commands[0]!;
  const relaunched = keepRow(
    await pollCli(() => cliJson<PsResult>(['ps'], again.env), (r) => keepRow(r).state === 'running' && keepRow(r).pid !== null, 'the relaunch'),
  );
  assert.notEqual(relaunched.pid, a.command.pid);
  assert.equal(await again.stop('SIGINT'), 0);
  await waitAllGone([relaunched.pid!]);
});
