// What tests start must not outlive them when the test runner, or a test process, is killed
// (test/watchdog.ts, scripts/test-watchdog.sh). A test process (watchdog-child.ts) starts things
// and hangs; its runner (`node --test`) or the process itself is SIGKILLed; then everything it
// started must be gone: a process group, a process marked by its environment, a directory a
// clean-up command removes, a Slurm cluster's daemons, a `shuma daemon` and its command, what a
// runtime in a child process left running under orphans 'adopt'.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isAlive, processesMentioning, waitFor } from './helpers.js';
import { slurmSkip } from './slurm-cluster.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'watchdog-child.js');
const dirs: string[] = [];
const children: ChildProcess[] = [];

after(() => {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Started {
  test: number;
  marker: string;
  watchdog: number;
  leader?: number;
  marked?: number;
  scratch?: string;
  root?: string;
  daemons?: number[];
  daemon?: number;
  command?: number;
  home?: string;
  runtime?: number;
  adopted?: number[];
}

/** Starts the test process (under a `node --test` runner, or alone) and waits until it has started everything. */
async function startTestProcess(what: string, underRunner: boolean): Promise<{ started: Started; runner: ChildProcess }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'shuma-watchdog-'));
  dirs.push(dir);
  const args = underRunner ? ['--test', CHILD, dir, what] : [CHILD, dir, what];
  // `node --test FILE ARGS` passes no ARGS to FILE: the runner gets them through the environment instead.
  // Not this file's runner's child: its own runner (or none) is the one watched.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const runner = spawn(process.execPath, underRunner ? ['--test', CHILD] : args, { stdio: 'ignore', env: { ...env, SHUMA_WATCHDOG_CHILD: `${dir}\n${what}` } });
  children.push(runner);
  const report = path.join(dir, 'started.json');
  // A test process that ends by itself ('forgets') has written its report first.
  const exited = new Promise<void>((resolve, reject) =>
    runner.once('exit', (code, signal) => (existsSync(report) ? resolve() : reject(new Error(`the test process ended first (${code ?? signal})`)))),
  );
  // A Slurm cluster takes up to a minute to come up on a loaded machine.
  await Promise.race([pollFor(() => existsSync(report), (done) => done, `${what}: everything started`, 120_000), exited]);
  return { started: JSON.parse(readFileSync(report, 'utf8')) as Started, runner };
}

/** As pollUntil (every 20 ms), with a deadline of its own. */
function pollFor<T>(read: () => T, predicate: (value: T) => boolean, what: string, timeoutMs: number): Promise<T> {
  return waitFor<T>(
    (observer) => {
      const timer = setInterval(() => observer(read()), 20);
      return () => clearInterval(timer);
    },
    predicate,
    what,
    timeoutMs,
  );
}

async function allGone(pids: readonly number[], what: string): Promise<void> {
  await pollFor(() => pids.filter(isAlive), (alive) => alive.length === 0, what, 60_000);
}

describe('what a test started, when the test runner or the test process is killed', () => {
  test('the runner SIGKILLed: the hung test process is killed, then its process group, its marked process and its directory are gone', async () => {
    const { started, runner } = await startTestProcess('plain', true);
    assert.ok(isAlive(started.leader!) && isAlive(started.marked!) && existsSync(started.scratch!));
    runner.kill('SIGKILL');
    await allGone([started.test, started.leader!, started.marked!, started.watchdog], 'the test process, what it started and the watchdog');
    assert.deepEqual(processesMentioning(started.marker), []);
    assert.equal(existsSync(started.scratch!), false, 'the clean-up command ran');
  });

  test('the test process SIGKILLed (run alone): what it started is gone', async () => {
    const { started, runner } = await startTestProcess('plain', false);
    runner.kill('SIGKILL');
    await allGone([started.leader!, started.marked!, started.watchdog], 'what it started, and the watchdog');
    assert.deepEqual(processesMentioning(started.marker), []);
    assert.equal(existsSync(started.scratch!), false);
  });

  test('a test that cleaned up and withdrew its clean-ups: the watchdog ends at its exit and runs none of them', async () => {
    const { started, runner } = await startTestProcess('forgets', false);
    await new Promise((resolve) => (runner.exitCode !== null ? resolve(undefined) : runner.once('exit', resolve)));
    await allGone([started.watchdog], 'the watchdog');
    assert.equal(existsSync(started.scratch!), true, 'a withdrawn clean-up command ran');
  });

  test('a shuma daemon and its command: gone once the runner is SIGKILLed', async () => {
    const { started, runner } = await startTestProcess('daemon', true);
    assert.ok(isAlive(started.daemon!) && isAlive(started.command!), 'the daemon and its command run');
    runner.kill('SIGKILL');
    await allGone([started.test, started.daemon!, started.command!, started.watchdog], 'the test process, the daemon, its command and the watchdog');
    assert.deepEqual(processesMentioning(started.marker), []);
  });

  test("a runtime in a child process SIGKILLed under orphans 'adopt': what it left running is gone once the runner is SIGKILLed", async () => {
    const { started, runner } = await startTestProcess('adopt', true);
    assert.equal(isAlive(started.runtime!), false, 'the child runtime was SIGKILLed');
    assert.ok(started.adopted!.length > 0 && started.adopted!.every(isAlive), 'its commands live on, for a next runtime');
    runner.kill('SIGKILL');
    await allGone([started.test, ...started.adopted!, started.watchdog], 'the test process, the runtime\'s commands and the watchdog');
  });

  test('a Slurm test cluster: its daemons gone and its root removed once the runner is SIGKILLed', async (t) => {
    const skip = slurmSkip();
    if (skip) return t.skip(skip);
    const { started, runner } = await startTestProcess('slurm', true);
    assert.ok(started.daemons!.every(isAlive), 'the cluster runs');
    runner.kill('SIGKILL');
    await allGone([started.test, ...started.daemons!, started.watchdog], 'the test process, slurmctld, both slurmd, munged and the watchdog');
    assert.equal(existsSync(started.root!), false, 'the cluster\'s root removed');
  });
});
