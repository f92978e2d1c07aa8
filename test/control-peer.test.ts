// The control socket checks who connects (SO_PEERCRED through the native addon): a uid that is
// neither the daemon's nor root is refused even where the socket's directory was opened up by
// mistake. Without the addon the daemon cannot check, and `health` says so.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { HealthResult } from '../src/protocol/control-results.js';
import { cli, cliJson, follow, MAIN, ROOT, startDaemon, tempDir } from './daemon-helpers.js';

const isRoot = process.getuid?.() === 0;

/** A client command run as uid/gid 65534 (nobody), as another user on the machine would. */
function cliAsNobody(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  const child = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, MAIN, ...args], {
    cwd: '/',
    env: { ...env, HOME: '/tmp' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out })));
}

test('a client of another uid is refused with PEER_REFUSED, even through an opened-up directory; the owner is served on', { skip: isRoot ? false : 'needs root to act as another uid' }, async () => {
  const daemon = await startDaemon();
  assert.equal((await cliJson<HealthResult>(['health'], daemon.env)).peerCheck, true);
  // The mistake the check is for: the directory and the socket opened to everyone.
  chmodSync(path.dirname(daemon.home), 0o711);
  chmodSync(daemon.home, 0o711);
  chmodSync(daemon.socket, 0o666);
  const stranger = await cliAsNobody(['ps', '--socket', daemon.socket], daemon.env);
  assert.notEqual(stranger.code, 0, stranger.out);
  assert.match(stranger.out, /PEER_REFUSED/);
  assert.match(stranger.out, /uid 65534 is neither the daemon's \(uid 0\) nor root/);
  assert.equal((await cli(['ps'], daemon.env)).code, 0, 'root, the owner, is served on');
  assert.equal(await daemon.stop('SIGTERM'), 0);
});

test('without the native addon the daemon cannot check its clients: health says so', async () => {
  // The package as an install without a C compiler leaves it: no build/ directory.
  const unbuilt = tempDir('shuma-nb-');
  cpSync(path.join(ROOT, 'dist/src'), path.join(unbuilt, 'dist/src'), { recursive: true });
  cpSync(path.join(ROOT, 'package.json'), path.join(unbuilt, 'package.json'));
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(unbuilt, 'node_modules'));
  const home = path.join(tempDir(), 'home');
  mkdirSync(home, { mode: 0o700 });
  const env = { ...process.env, SHUMA_HOME: home };
  const child = spawn(process.execPath, [path.join(unbuilt, 'dist/src/cli/main.js'), 'daemon'], { cwd: unbuilt, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const daemon = follow(child);
  try {
    await daemon.waitFor(/^shuma daemon: pid \d+, serving /);
    const health = await cliJson<HealthResult>(['health'], env);
    assert.equal(health.peerCheck, false);
    assert.ok(health.warnings.some((w) => /cannot check the uid of its clients \(SO_PEERCRED needs the native addon/.test(w)), health.warnings.join('\n'));
    const text = await cli(['health'], env);
    assert.match(text.stdout, /client uid check off/);
  } finally {
    child.kill('SIGTERM');
    assert.equal(await daemon.exited, 0);
  }
});
