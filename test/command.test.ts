import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fixture, startRuntime, waitForOutput } from './helpers.js';

describe('a command in a workspace', async () => {
  const rt = await startRuntime();
  const ws = await rt.createWorkspace({ label: 'commands', env: { LANG: 'C' } });

  test('stdout and stderr are captured separately; exit code is the status (seed 7, 9, 11)', async () => {
    const cmd = await ws.run({ exec: '/bin/sh', argv: ['-c', 'echo out; echo err >&2; exit 3'] });
    assert.deepEqual(await cmd.exited, { code: 3, signal: null, status: 3 });
    assert.equal((await ws.logs(cmd.id)).toString(), 'out\n');
    assert.equal((await ws.logs(cmd.id, { stream: 'stdout' })).toString(), 'out\n');
    assert.equal((await ws.logs(cmd.id, { stream: 'stderr' })).toString(), 'err\n');
    assert.equal((await ws.logs(cmd.id, { stream: 'both' })).toString(), 'out\nerr\n');
  });

  test('tailBytes returns the last bytes kept; 0 returns all (seed 9)', async () => {
    const cmd = await ws.run({ exec: '/bin/sh', argv: ['-c', 'printf abcdefghij'] });
    await cmd.exited;
    assert.equal((await ws.logs(cmd.id, { tailBytes: 3 })).toString(), 'hij');
    assert.equal((await ws.logs(cmd.id, { tailBytes: 0 })).toString(), 'abcdefghij');
    assert.equal((await ws.logs(cmd.id, { tailBytes: 100 })).toString(), 'abcdefghij');
  });

  test('a command killed by a signal has status 128 + signal number (seed 11)', async () => {
    const cmd = await ws.run({ exec: fixture('forever.sh') });
    await waitForOutput(ws, cmd.id, 'ready');
    process.kill(cmd.pid, 'SIGKILL');
    assert.deepEqual(await cmd.exited, { code: null, signal: 'SIGKILL', status: 137 });
    const sigterm = await ws.run({ exec: fixture('forever.sh') });
    await waitForOutput(ws, sigterm.id, 'ready');
    process.kill(sigterm.pid, 'SIGTERM');
    assert.equal((await sigterm.exited).status, 143);
  });

  test('environment: the runtime\'s, then the workspace\'s, then the command\'s', async () => {
    const cmd = await ws.run({
      exec: 'sh',
      argv: ['-c', 'echo "$LANG $EXTRA $HOME"'],
      env: { EXTRA: 'x y' },
    });
    await cmd.exited;
    assert.equal((await ws.logs(cmd.id)).toString(), `C x y ${process.env.HOME ?? ''}\n`);
  });

  test('exec is found on PATH and relative paths resolve against cwd', async () => {
    const onPath = await ws.run({ exec: 'basename', argv: ['/a/b/c'] });
    await onPath.exited;
    assert.equal((await ws.logs(onPath.id)).toString(), 'c\n');
    const relative = await ws.run({ exec: './forever.sh', cwd: fixture('.') });
    await waitForOutput(ws, relative.id, 'ready');
    process.kill(relative.pid, 'SIGKILL');
    await relative.exited;
  });

  test('commands() lists every run ordered by id, with pid, liveness, status and bytes (seed 10, 12)', async () => {
    const live = await ws.run({ exec: fixture('forever.sh'), label: 'sleeper' });
    await waitForOutput(ws, live.id, 'ready');
    const list = await ws.commands();
    const ids = list.map((c) => c.id);
    assert.deepEqual(ids, [...ids].sort());
    const sleeper = list.find((c) => c.id === live.id);
    assert.ok(sleeper);
    assert.equal(sleeper.label, 'sleeper');
    assert.equal(sleeper.pid, live.pid);
    assert.equal(sleeper.alive, true);
    assert.equal(sleeper.exitStatus, null);
    assert.equal(sleeper.logBytes, 'ready\n'.length);
    assert.equal(sleeper.restarts, 0);
    const first = list[0]!;
    assert.equal(first.alive, false);
    assert.equal(first.exitStatus, 3);
    assert.equal(first.logBytes, 'out\nerr\n'.length);
    process.kill(live.pid, 'SIGKILL');
    await live.exited;
    const after = (await ws.commands()).find((c) => c.id === live.id);
    assert.equal(after?.alive, false);
    assert.equal(after?.exitStatus, 137);
  });

  test('health counts live workspaces and commands (seed 23)', async () => {
    const before = await rt.health();
    const cmd = await ws.run({ exec: fixture('forever.sh') });
    await waitForOutput(ws, cmd.id, 'ready');
    const during = await rt.health();
    assert.equal(during.aliveCommands, before.aliveCommands + 1);
    assert.equal(during.aliveWorkspaces, 1);
    assert.equal(during.alivePipelines, 0);
    assert.equal(during.activeFlows, 0);
    process.kill(cmd.pid, 'SIGKILL');
    await cmd.exited;
    assert.equal((await rt.health()).aliveCommands, before.aliveCommands);
  });
});
