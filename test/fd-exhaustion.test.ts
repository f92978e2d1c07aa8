// Running out of file descriptors (RLIMIT_NOFILE) is a fault of the runtime's surroundings: the
// spawn that meets it fails and says what to raise, sampling skips a round and says so, and the
// runtime serves on and stops cleanly. A runtime in a child process under prlimit, so that the
// limit is its own; the test reads what it reports, line by line.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { processesMentioning } from './helpers.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fd-exhaustion-child.js');

test('descriptors exhausted: the spawn fails with SPAWN_FAILED naming EMFILE and the limit to raise, sampling warns and skips, the runtime serves on and stops cleanly', async () => {
  const marker = `shuma-fd-${process.pid}`;
  const child = spawn('prlimit', ['--nofile=160:160', '--', process.execPath, CHILD, marker], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.find((l) => 'uncaught' in l), undefined, stdout);
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  const { failure } = lines[0] as { failure: { code: string; message: string } | null };
  assert.ok(failure, 'a spawn failed');
  assert.equal(failure.code, 'SPAWN_FAILED');
  assert.match(failure.message, /EMFILE/);
  assert.match(failure.message, /RLIMIT_NOFILE|ulimit -n/);
  const { warnings } = lines[1] as { warnings: string[] };
  assert.ok(warnings.some((w) => /stats sampling skipped a round \(EMFILE/.test(w)), warnings.join('\n'));
  assert.equal(warnings.filter((w) => /sampling/.test(w)).length, 1, 'one warning per episode, not one per round');
  assert.deepEqual(lines.slice(2), [{ stoppedWhileExhausted: true }, { served: 0 }, { closed: true }]);
  assert.deepEqual(processesMentioning(marker), [], 'no process left');
});
