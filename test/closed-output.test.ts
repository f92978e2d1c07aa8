// A supervisor whose own output goes away (`shuma daemon | head -1`, a closed terminal, a
// `tee` that was Ctrl-C'ed) keeps supervising and shuts down as it would have: state saved,
// lock and socket removed, every process stopped.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { RunResult } from '../src/protocol/control-results.js';
import { cli, cliJson, startDaemon, waitAllGone } from './daemon-helpers.js';

test('the daemon with its stdout and stderr closed: SIGTERM still saves the state, removes shuma.lock and the socket, exits 0', async () => {
  const daemon = await startDaemon();
  // Our ends of its stdout and stderr go, as `head -1` exits after the "serving" line.
  daemon.child.stdout!.destroy();
  daemon.child.stderr!.destroy();
  const run = await cliJson<RunResult>(['run', '-w', 'lost', '--restart', 'on-failure', '--', 'sleep', '1000'], daemon.env);
  // A write it must make while serving (the second-signal notice) meets the closed pipe too.
  assert.equal((await cli(['ps'], daemon.env)).code, 0);
  assert.equal(await daemon.stop('SIGTERM'), 0, 'exit code');
  assert.equal(existsSync(path.join(daemon.stateDir, 'shuma.lock')), false, 'shuma.lock removed');
  assert.equal(existsSync(daemon.socket), false, 'socket removed');
  await waitAllGone([run.command.pid]);

  const again = await startDaemon({ home: daemon.home });
  assert.match(again.lines[0]!, /1 workspace restored/);
  assert.equal(await again.stop('SIGTERM'), 0);
});
