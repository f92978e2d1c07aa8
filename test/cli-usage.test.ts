// The command line's own answers, before any daemon is involved: help for every subcommand,
// the version, and mistakes named in the user's words with what would have been right.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { COMMANDS } from '../src/cli/commands.js';
import { closest } from '../src/cli/suggest.js';
import { cli, ROOT, tempDir } from './daemon-helpers.js';

// No daemon at this home: a command that reached for one would fail, not print its usage.
const env = { ...process.env, SHUMA_HOME: path.join(tempDir(), 'none'), SHUMA_NO_DAEMON_START: '1' };

test('`shuma <cmd> --help` and `shuma help <cmd>` print the usage of every subcommand, exit 0', async () => {
  const names = Object.keys(COMMANDS);
  assert.ok(names.length >= 12);
  for (const name of names) {
    const help = await cli([name, '--help'], env);
    assert.equal(help.code, 0, `${name} --help: ${help.stderr}`);
    assert.match(help.stdout, new RegExp(`^usage: shuma ${name}\\b`), `${name} --help`);
    assert.equal((await cli(['help', name], env)).stdout, help.stdout);
  }
  // A subcommand's subcommand too.
  assert.match((await cli(['pipeline', 'save', '--help'], env)).stdout, /^usage: shuma pipeline run/);
});

test('--version prints the package version', async () => {
  const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V', 'version']) assert.deepEqual(await cli([flag], env), { code: 0, stdout: `${version}\n`, stderr: '' });
});

test('a mistyped subcommand is refused with the nearest one suggested and the list of them', async () => {
  const typo = await cli(['lgos', 'x'], env);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /^shuma: unknown command 'lgos'; did you mean 'shuma logs'\?\ncommands: up, daemon, ps, run, logs/);
  const far = await cli(['frobnicate'], env);
  assert.doesNotMatch(far.stderr, /did you mean/);
  const sub = await cli(['pipeline', 'rnu'], env);
  assert.equal(sub.code, 2);
  assert.match(sub.stderr, /unknown pipeline command "rnu" \(did you mean run\?\)/);
});

test('an unknown option says which, the nearest valid one, and every valid one; a missing value says which option', async () => {
  const unknown = await cli(['run', '-w', 'x', '--lable', 'y', '--', 'true'], env);
  assert.equal(unknown.code, 2);
  const first = unknown.stderr.split('\n')[0]!;
  assert.match(first, /^shuma run: unknown option --lable \(did you mean --label\?\); valid options: --workspace\/-w, --label\/-l \(or --name\), --restart, /);
  assert.match(first, /--socket, --json, --no-daemon-start, --help\/-h$/);
  // Node's parser would have said "To specify a positional argument starting with a '-'…".
  assert.doesNotMatch(unknown.stderr, /positional/);
  assert.match(unknown.stderr, /\nusage: shuma run -w <workspace>/);

  const missing = await cli(['logs', '--tail'], env);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^shuma logs: --tail needs a value\n/);
  const swallowed = await cli(['run', '-w', '--json', '--', 'true'], env);
  assert.match(swallowed.stderr, /^shuma run: -w needs a value \(got the option --json; a value that starts with - is written --workspace=--json\)/);
  const valued = await cli(['ps', '--json=yes'], env);
  assert.match(valued.stderr, /^shuma ps: --json takes no value \(got --json=yes\)/);
  const up = await cli(['up', '--json', 'x.yaml'], env);
  assert.match(up.stderr, /^shuma up: unknown option --json; valid options: --inspect, --help\/-h\n/);
});

test('--name is --label, as in PM2; both at once must agree', async () => {
  const both = await cli(['run', '-w', 'x', '--name', 'a', '--label', 'b', '--', 'true'], env);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--name is another name for --label: give one of them \(got "a" and "b"\)/);
  // Accepted: it gets as far as looking for the daemon.
  const named = await cli(['run', '-w', 'x', '--name', 'a', '--', 'true'], env);
  assert.equal(named.code, 3, named.stderr);
});

test('closest(): a typo is near, a different word is not', () => {
  assert.equal(closest('stpo', ['stop', 'stats', 'ps']), 'stop');
  assert.equal(closest('pipline', ['pipeline', 'ps']), 'pipeline');
  assert.equal(closest('sta', ['stop', 'stats']), 'stats');
  assert.equal(closest('zzz', ['stop', 'stats']), undefined);
});
