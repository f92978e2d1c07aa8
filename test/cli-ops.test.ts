// The everyday operations a PM2 user expects, through the built CLI: a daemon started on first use
// and stopped by `shuma kill` (state saved), the client's environment passed to what it runs,
// `shuma startup`'s unit, saved pipelines under their names, pipeline nodes in `ps`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, test } from 'node:test';
import type { HealthResult, PsResult, RunResult } from '../src/protocol/control-results.js';
import { fixture, isAlive, processesMentioning } from './helpers.js';
import { cli, cliJson, pollCli, startDaemon, tempDir, waitAllGone } from './daemon-helpers.js';

const run = promisify(execFile);
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';

/** Daemons these tests started through the client (detached, so not the helpers' children). */
const started = new Set<number>();
after(async () => {
  for (const pid of started) if (isAlive(pid)) process.kill(pid, 'SIGTERM');
  await waitAllGone([...started]);
});

/** A home with no daemon, where client commands may start one. */
function freshHome(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, SHUMA_HOME: path.join(tempDir(), 'home') };
  delete env.SHUMA_NO_DAEMON_START;
  return env;
}

async function daemonPid(env: NodeJS.ProcessEnv): Promise<number> {
  const { pid } = await cliJson<HealthResult>(['health'], env);
  started.add(pid);
  return pid;
}

test('run starts a daemon when none runs (one line says so); queries do not; kill stops it with the state saved; the next run brings it back', async () => {
  const env = freshHome();
  const home = env.SHUMA_HOME!;
  const refused = await cli(['run', '--no-daemon-start', '-w', 'svc', '--', 'true'], env);
  assert.equal(refused.code, 3);
  assert.equal(existsSync(path.join(home, 'shuma.sock')), false, 'no daemon started');
  assert.equal((await cli(['ps'], env)).code, 3, 'a query starts nothing');

  const first = await cli(['run', '-w', 'svc', '--label', 'server', '--restart', 'on-failure', '--', fixture('forever.sh')], env);
  assert.equal(first.code, 0, first.stderr);
  const line = /^shuma: no daemon was running: started one \(pid (\d+), its output in (\S+); `shuma kill` stops it\)\n$/.exec(first.stderr);
  assert.ok(line, first.stderr);
  const pid = await daemonPid(env);
  assert.equal(Number(line[1]), pid);
  assert.equal(line[2], path.join(home, 'daemon.log'));
  assert.match(readFileSync(line[2]!, 'utf8'), /^shuma daemon: pid \d+, serving /m);
  assert.match(first.stdout, /^created workspace svc/);

  // Detached: it outlived the command that started it; a second run uses it, says nothing.
  const second = await cliJson<RunResult>(['run', '-w', 'svc', '--', 'sleep', '1000'], env);
  assert.equal(await daemonPid(env), pid);
  const before = await cliJson<PsResult>(['ps'], env);
  const pids = before.workspaces[0]!.commands.map((c) => c.pid!);
  assert.equal(pids.length, 2);
  assert.ok(pids.includes(second.command.pid));

  const killed = await cli(['kill'], env);
  assert.equal(killed.code, 0, killed.stderr);
  assert.equal(killed.stdout, `stopped the shuma daemon (pid ${pid}); its state is saved in ${path.join(home, 'state')}\n`);
  assert.equal(isAlive(pid), false);
  assert.equal(existsSync(path.join(home, 'shuma.sock')), false);
  await waitAllGone(pids);
  assert.deepEqual(await cli(['kill'], env), { code: 0, stdout: `no shuma daemon was running at ${path.join(home, 'shuma.sock')}\n`, stderr: '' });

  // The saved workspace comes back with the next daemon, under its id; the supervised command runs again.
  const third = await cliJson<RunResult>(['run', '-w', 'svc', '--', 'true'], env);
  assert.equal(third.workspace.id, before.workspaces[0]!.id);
  assert.equal(third.workspace.created, false);
  const again = await daemonPid(env);
  assert.notEqual(again, pid);
  const server = await pollCli(
    () => cliJson<PsResult>(['ps'], env),
    (r) => r.workspaces[0]!.commands.some((c) => c.label === 'server' && c.state === 'running' && c.pid !== null),
    'the server relaunched',
  );
  const relaunched = server.workspaces[0]!.commands.find((c) => c.label === 'server')!.pid!;
  assert.equal((await cli(['kill', '--json'], env)).code, 0);
  await waitAllGone([again, relaunched]);
});

test('concurrent runs with no daemon start one daemon between them, and every command runs', async () => {
  const env = freshHome();
  const results = await Promise.all([1, 2, 3].map(() => cli(['run', '--json', '-w', 'crowd', '--', 'sleep', '1000'], env)));
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  const pid = await daemonPid(env);
  // Whoever's daemon won, each client names the one that answers.
  for (const r of results) assert.match(r.stderr, new RegExp(`^(shuma: no daemon was running: started one \\(pid ${pid},.*\\n)?$`));
  const ps = await cliJson<PsResult>(['ps'], env);
  assert.equal(ps.workspaces.length, 1);
  assert.equal(ps.workspaces[0]!.commands.length, 3);
  assert.equal((await cli(['kill'], env)).code, 0);
  await waitAllGone([pid, ...results.map((r) => (JSON.parse(r.stdout) as RunResult).command.pid)]);
});

test('a daemon that cannot start is reported with its own words, and nothing is left running', async () => {
  const env = freshHome();
  // Others may write to the socket's directory: the daemon refuses it (and exits 2).
  const open = path.join(tempDir(), 'open');
  mkdirSync(open, { mode: 0o777 });
  chmodSync(open, 0o777);
  const socket = path.join(open, 's.sock');
  const result = await cli(['run', '--socket', socket, '-w', 'x', '--', 'sleep', '1000'], env);
  assert.equal(result.code, 3, result.stderr);
  assert.match(result.stderr, /NO_DAEMON: the daemon started for \S+s\.sock is not serving \(it exited with code 2\); its output, in \S+daemon\.log:\n.*CONTROL_DIR_INVALID: the socket directory \S+open has mode 0777/);
  assert.equal(existsSync(socket), false);
  assert.deepEqual(processesMentioning(socket), []);
});

test("run passes the client's environment (FOO=bar … 'echo $FOO' prints bar); --env-file and --env on top; --no-inherit-env leaves it out", async () => {
  const daemon = await startDaemon();
  const env = { ...daemon.env, FOO: 'bar', ONLY_CLIENT: 'yes' };
  const echo = await cliJson<RunResult>(['run', '-w', 'env', '--', 'sh', '-c', 'echo "FOO=$FOO ONLY_CLIENT=$ONLY_CLIENT"'], env);
  const out = (label: string) => pollCli(() => cli(['logs', `env/${label}`], daemon.env), (r) => r.stdout.endsWith('\n'), `${label}'s line`);
  assert.equal((await out(echo.command.label)).stdout, 'FOO=bar ONLY_CLIENT=yes\n');

  const file = path.join(tempDir(), 'app.env');
  writeFileSync(file, '# settings\nexport FOO=from-file\nQUOTED="a b"\nPLAIN=x # note\n\n');
  await cliJson<RunResult>(['run', '-w', 'env', '--label', 'filed', '--env-file', file, '--env', 'PLAIN=y', '--', 'sh', '-c', 'echo "$FOO|$QUOTED|$PLAIN|$ONLY_CLIENT"'], env);
  assert.equal((await out('filed')).stdout, 'from-file|a b|y|yes\n');

  await cliJson<RunResult>(['run', '-w', 'env', '--label', 'clean', '--no-inherit-env', '--', 'sh', '-c', 'echo "[$ONLY_CLIENT]"'], env);
  assert.equal((await out('clean')).stdout, '[]\n');

  // Pipeline nodes get it too.
  await cliJson(['pipeline', 'run', '-w', 'env', '--label', 'p', '--', 'sh', '-c', 'echo $FOO', '|', 'cat'], env);
  assert.equal((await pollCli(() => cli(['logs', 'env/p/cat'], daemon.env), (r) => r.stdout !== '', 'the pipeline')).stdout, 'bar\n');

  const bad = path.join(tempDir(), 'bad.env');
  writeFileSync(bad, 'GOOD=1\nnot a line\n');
  const refused = await cli(['run', '-w', 'env', '--env-file', bad, '--', 'true'], env);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /bad\.env:2: expected NAME=value \(got "not a line"\)/);
  assert.equal(await daemon.stop('SIGTERM'), 0);
});

test('a saved pipeline runs under its saved name; ps lists pipeline nodes by the names logs takes', async () => {
  const daemon = await startDaemon();
  assert.equal((await cli(['pipeline', 'save', 'sevens', '-w', 'p', '--', 'seq', '1', '100', '|', 'grep', '7', '|', 'wc', '-l'], daemon.env)).code, 0);
  const run = await cli(['pipeline', 'run-saved', 'sevens'], daemon.env);
  assert.match(run.stdout, /started pipeline p\/sevens \(/);
  await cli(['pipeline', 'run', '-w', 'p', '--name', 'idle', '--', 'sleep', '1000', '|', 'cat'], daemon.env);
  const ps = await pollCli(() => cli(['ps'], daemon.env), (r) => /p\/idle\/cat/.test(r.stdout), 'the idle pipeline in ps');
  const idle = (await cliJson<PsResult>(['ps'], daemon.env)).pipelines.find((p) => p.label === 'idle')!;
  for (const node of idle.nodes) assert.match(ps.stdout, new RegExp(`node\\s+p/idle/${node.label}\\s+${node.commandId}\\s+running\\s+${node.pid}\\n`));
  // A finished node: no pid (it is gone), its exit.
  const done = await pollCli(() => cli(['ps'], daemon.env), (r) => /p\/sevens\s+\S+\s+succeeded/.test(r.stdout), 'sevens to succeed');
  assert.match(done.stdout, /node\s+p\/sevens\/wc\s+\S+\s+exited\s+-\s+0\n/);
  assert.equal((await pollCli(() => cli(['logs', 'p/sevens/wc'], daemon.env), (r) => r.stdout !== '', 'wc')).stdout.trim(), '19');

  // A name that fits two is refused, listing them by what `ps` shows: NAME (ID).
  const a = await cliJson<RunResult>(['run', '-w', 'twin-a', '--name', 'same', '--', 'sleep', '1000'], daemon.env);
  const b = await cliJson<RunResult>(['run', '-w', 'twin-b', '--name', 'same', '--', 'sleep', '1000'], daemon.env);
  const ambiguous = await cli(['logs', 'same'], daemon.env);
  assert.equal(ambiguous.code, 2);
  assert.ok(ambiguous.stderr.includes(`"same" names 2 commands: twin-a/same (${a.command.id}), twin-b/same (${b.command.id}); use an id (or ws/label)`), ambiguous.stderr);
  const table = (await cli(['ps'], daemon.env)).stdout;
  for (const r of [a, b]) assert.match(table, new RegExp(`command\\s+${r.workspace.label}/same\\s+${r.command.id}\\s`));
  assert.equal((await cliJson<{ id: string }>(['why', 'twin-a/same'], daemon.env)).id, a.command.id);
  assert.equal(await daemon.stop('SIGTERM'), 0);
  await waitAllGone([...idle.nodes.map((n) => n.pid), a.command.pid, b.command.pid]);
});

test('daemon --inspect serves the inspector page; shuma inspect prints its URL (and says how to get one when there is none)', async () => {
  const plain = await startDaemon();
  const none = await cli(['inspect'], plain.env);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /serves no inspector: start it with `shuma daemon --inspect`/);
  assert.equal(await plain.stop('SIGTERM'), 0);

  const daemon = await startDaemon({ args: ['--inspect'] });
  const line = await daemon.waitFor(/^shuma daemon: inspector: /);
  const url = line.slice('shuma daemon: inspector: '.length);
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.deepEqual(await cli(['inspect'], daemon.env), { code: 0, stdout: `${url}\n`, stderr: '' });
  assert.deepEqual(await cliJson(['inspect'], daemon.env), { url });
  const page = await fetch(url);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<title>shuma inspector<\/title>/);
  assert.equal(await daemon.stop('SIGTERM'), 0);
});

test('startup prints a systemd unit that runs this daemon at boot; --install writes it', async () => {
  const env = freshHome();
  const printed = await cli(['startup'], env);
  assert.equal(printed.code, 0, printed.stderr);
  assert.match(printed.stdout, /\nExecStart=\S+node\S* \S+\/dist\/src\/cli\/main\.js daemon\n/);
  assert.ok(printed.stdout.includes(`\nEnvironment=SHUMA_HOME=${env.SHUMA_HOME}\n`));
  assert.match(printed.stdout, /\nKillMode=mixed\n[\s\S]*\[Install\]\nWantedBy=(multi-user|default)\.target\n$/);
  assert.match(printed.stderr, /enable --now shuma/);
  const unit = path.join(tempDir(), 'units', 'shuma.service');
  const installed = await cli(['startup', '--install', '--path', unit], env);
  assert.equal(installed.code, 0, installed.stderr);
  assert.equal(readFileSync(unit, 'utf8'), printed.stdout.slice(printed.stdout.indexOf('\n') + 1));
});

test('the unit passes systemd-analyze verify', { skip: existsSync(SYSTEMD_ANALYZE) ? false : `${SYSTEMD_ANALYZE} is absent` }, async () => {
  const unit = path.join(tempDir(), 'shuma.service');
  assert.equal((await cli(['startup', '--install', '--path', unit], freshHome())).code, 0);
  // It exits 0 on a bad line too, saying so on stderr: silence is the pass.
  const { stdout, stderr } = await run(SYSTEMD_ANALYZE, ['verify', unit]);
  assert.deepEqual({ stdout, stderr }, { stdout: '', stderr: '' });
});
