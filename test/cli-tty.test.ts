// `shuma up` on a real terminal: the live view read back from a tmux pane, then Ctrl-C typed
// into it, as a user would.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pollUntil, processesMentioning } from './helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const TMUX = '/usr/bin/tmux';
const scratch = mkdtempSync(path.join(tmpdir(), 'shuma-tty-'));
// A server of our own, so the test neither sees nor disturbs anyone else's tmux sessions.
const server = `shuma-test-${process.pid}`;
const tmux = (...args: string[]) => execFileSync(TMUX, ['-L', server, ...args], { encoding: 'utf8' });

after(() => {
  try {
    tmux('kill-server');
  } catch {
    // already gone
  }
  rmSync(scratch, { recursive: true, force: true });
});

// CI installs tmux (.ci/run); elsewhere the check needs it too, but a machine without it skips.
const missing = !existsSync(TMUX) && !process.env.CI ? 'tmux is not installed' : false;

test('the live view on a terminal shows each actor and its countdown; Ctrl-C stops everything', { skip: missing }, async () => {
  const marker = `tty-marker-${process.pid}`;
  const spec = path.join(scratch, 'tty.yaml');
  writeFileSync(
    spec,
    [
      'workspaces:',
      '  - label: tty',
      '    ttlMs: 120000',
      '    commands:',
      '      - label: looper',
      `        exec: /bin/sh`,
      `        argv: [-c, 'exit 1', ${marker}]`,
      '        restart: { onFailure: true, backoffMs: 60000 }',
      '      - label: steady',
      '        exec: /bin/sh',
      `        argv: [-c, 'echo steady and ready; sleep 120', ${marker}]`,
    ].join('\n'),
  );
  // The pane outlives the command so its last screen and exit code can be read.
  tmux('new-session', '-d', '-x', '160', '-y', '40', `'${process.execPath}' '${MAIN}' up '${spec}'; echo shuma-exit=$?; sleep 120`);
  const pane = () => tmux('capture-pane', '-p');

  // A terminal has no event for "the screen changed": read the pane until it shows them.
  const live = await pollUntil(
    pane,
    (screen) =>
      /command\s+tty\/looper\s+backoff\s+pid \d+\s+restarts 0\s+backoff in \d+\.\d s/.test(screen) &&
      /command\s+tty\/steady\s+running\s+pid \d+/.test(screen) &&
      /workspace\s+tty\s+running\s.*cpu [\d.]+%\s+rss [\d.]+ \w+\s+procs \d.*ttl in \d+\.\d s/.test(screen) &&
      /^tty\/steady\s+\| steady and ready$/m.test(screen),
    'the live view with both commands, the backoff and the TTL counting down, and what steady wrote',
    50,
  );
  assert.match(live, /^shuma up — Ctrl-C stops everything/m);
  assert.ok(processesMentioning(marker).length > 0);

  tmux('send-keys', 'C-c');
  const ended = await pollUntil(pane, (screen) => /shuma-exit=\d+/.test(screen), 'the exit code under the last screen', 50);
  assert.match(ended, /shuma-exit=1/);
  assert.match(ended, /workspace\s+tty\s+stopped/);
  assert.match(ended, /done: 0 of 2 succeeded; not succeeded: tty\/looper, tty\/steady/);
  assert.deepEqual(processesMentioning(marker), []);
});
