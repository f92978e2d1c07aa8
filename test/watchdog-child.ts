// A test process that starts things and then hangs (watchdog.test.ts runs it, under `node --test`
// or alone, and kills it or its runner). It writes what it started to <dir>/started.json.
//   node watchdog-child.js DIR plain|forgets|slurm|daemon|adopt (or SHUMA_WATCHDOG_CHILD="DIR\nWHAT")
import { spawn } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunResult } from '../src/protocol/control-results.js';
import { cleanUpIfKilled, watchdogPid } from './watchdog.js';

// Under `node --test` the arguments come through the environment (the runner passes none on).
const [dir, what] = (process.env.SHUMA_WATCHDOG_CHILD?.split('\n') ?? process.argv.slice(2)) as [string, 'plain' | 'slurm' | 'daemon' | 'forgets' | 'adopt'];
const marker = `0.0000000${process.pid}9`;
const report: Record<string, unknown> = { test: process.pid, marker };
// Whole or not there: the test polls for the file, and once read it empty (it was written in place).
function writeReport(): void {
  const file = path.join(dir, 'started.json');
  writeFileSync(`${file}.part`, JSON.stringify(report));
  renameSync(`${file}.part`, file);
}

if (what === 'plain' || what === 'forgets') {
  // A process group of its own (as a runtime in a child process), one marked by its environment
  // (as what a daemon started), and a directory a clean-up command removes.
  const leader = spawn('/bin/sh', ['-c', `/bin/sleep 300 ${marker} & wait`], { detached: true, stdio: 'ignore' });
  const marked = spawn('/bin/sleep', ['300', marker], { detached: true, stdio: 'ignore', env: { ...process.env, SHUMA_TEST_MARK: marker } });
  const scratch = path.join(dir, 'scratch');
  mkdirSync(scratch);
  const forget = [cleanUpIfKilled({ pid: leader.pid! }), cleanUpIfKilled({ env: `SHUMA_TEST_MARK=${marker}` }), cleanUpIfKilled({ run: ['/bin/rm', '-rf', scratch] })];
  Object.assign(report, { leader: leader.pid, marked: marked.pid, scratch });
  if (what === 'forgets') {
    // Cleaned up by the test itself, then withdrawn: the watchdog must leave the directory alone.
    process.kill(-leader.pid!, 'SIGKILL');
    process.kill(marked.pid!, 'SIGKILL');
    for (const withdraw of forget) withdraw();
    Object.assign(report, { watchdog: watchdogPid() });
    writeReport();
    process.exit(0);
  }
} else if (what === 'slurm') {
  const { clusterUp } = await import('./slurm-cluster.js');
  const cluster = await clusterUp();
  Object.assign(report, { root: cluster.root, daemons: await Promise.all((['slurmctld', 'slurmd-n1', 'slurmd-n2', 'munged'] as const).map((d) => cluster.pidOf(d))) });
} else if (what === 'adopt') {
  // A runtime in a child process on a stateDir with orphans 'adopt', SIGKILLed as the crash tests
  // do: its commands live on (no PDEATHSIG under 'adopt'), waiting for a next runtime.
  const { startChildRuntime } = await import('./child-runtime.js');
  const stateDir = path.join(dir, 'state');
  const { child } = startChildRuntime(fileURLToPath(new URL('./die-with-runtime-child.js', import.meta.url)), [stateDir], stateDir);
  const line = await new Promise<string>((resolve) => child.stdout.setEncoding('utf8').once('data', resolve));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  Object.assign(report, { runtime: child.pid, adopted: (JSON.parse(line) as { pids: number[] }).pids });
} else {
  const { startDaemon, cliJson } = await import('./daemon-helpers.js');
  const daemon = await startDaemon();
  // A command the daemon runs: it would outlive a SIGKILLed daemon that adopts its orphans.
  const run = await cliJson<RunResult>(['run', '-w', 'leash', '--', '/bin/sleep', '300', marker], daemon.env);
  Object.assign(report, { daemon: daemon.pid, home: daemon.home, command: run.command.pid });
}
Object.assign(report, { watchdog: watchdogPid() });
writeReport();
// Hangs, as a test stuck on something.
setInterval(() => undefined, 60_000);
