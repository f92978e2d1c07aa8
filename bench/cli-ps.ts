// Issue 7's CLI figure: `shuma ps` as a user runs it (a new CLI process each time, connecting to
// the daemon's socket) with 20 and with 1,000 processes under the daemon, against `pm2 jlist`
// with 20 processes under PM2 (its own PM2_HOME in a temp directory, killed afterwards).
// Also the split of a `ps`: the Node process start alone, and the socket round trip alone.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlClient } from '../src/cli/control-client.js';
import { now, progress, quantile, type Line } from './measure.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const RUNS = 15;
const ROUND_TRIPS = 50;

function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(file, args, { env, maxBuffer: 64 * 2 ** 20 }, (error, stdout) => (error ? reject(error) : resolve(stdout))),
  );
}

async function medianMs(op: () => Promise<unknown>, runs = RUNS): Promise<number> {
  await op(); // warm the page cache and the daemon's first answer
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = now();
    await op();
    times.push(now() - start);
  }
  return quantile(times, 0.5);
}

async function startShumaDaemon(home: string): Promise<{ stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [MAIN, 'daemon'], { env: { ...process.env, SHUMA_HOME: home }, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (out.includes(', serving ')) resolve();
    });
    void exited.then(() => reject(new Error(`shuma daemon exited: ${out}`)));
  });
  return {
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function shumaSide(lines: Line[], dir: string): Promise<number> {
  const home = path.join(dir, 'shuma');
  const env = { ...process.env, SHUMA_HOME: home };
  const daemon = await startShumaDaemon(home);
  const client = await ControlClient.connect(path.join(home, 'shuma.sock'));
  const psCli = () => run(process.execPath, [MAIN, 'ps'], env);
  const psCall = () => client.call('ps', {});
  let started = 0;
  const startSleepers = async (total: number) => {
    while (started < total) {
      const batch = Math.min(50, total - started);
      await Promise.all(
        Array.from({ length: batch }, (_, i) =>
          client.call('run', { workspace: `bench-${Math.floor((started + i) / 100)}`, spec: { exec: 'sleep', argv: ['3600'] } }),
        ),
      );
      started += batch;
    }
  };
  let ps20 = Number.NaN;
  try {
    const nodeStart = await medianMs(() => run(process.execPath, ['-e', '0'], env));
    for (const count of [20, 1_000]) {
      progress(`cli ps: ${count} processes under shuma daemon`);
      await startSleepers(count);
      const cli = await medianMs(psCli);
      const roundTrip = await medianMs(psCall, ROUND_TRIPS);
      if (count === 20) ps20 = cli;
      lines.push(
        { what: `shuma ps, ${count} processes: CLI process (median of ${RUNS})`, unit: 'ms', shuma: cli, baseline: Number.NaN },
        { what: `  of which the socket round trip (in-process ps call)`, unit: 'ms', shuma: roundTrip, baseline: Number.NaN },
      );
    }
    lines.push({ what: '  for scale: `node -e 0` (a Node process start)', unit: 'ms', shuma: nodeStart, baseline: Number.NaN });
  } finally {
    client.close();
    await daemon.stop();
  }
  return ps20;
}

/** `pm2 jlist` with 20 processes, or null when pm2 is not installed. */
async function pm2Side(dir: string): Promise<number | null> {
  let pm2: string;
  try {
    pm2 = path.join(path.dirname(createRequire(import.meta.url).resolve('pm2/package.json')), 'bin', 'pm2');
  } catch {
    progress('cli ps: pm2 is not installed (npm install): its side is skipped');
    return null;
  }
  const home = path.join(dir, 'pm2');
  const env = { ...process.env, PM2_HOME: home };
  const config = path.join(dir, 'ecosystem.config.cjs');
  const apps = Array.from({ length: 20 }, (_, i) => ({ name: `sleep-${i}`, script: 'sleep', args: '3600', interpreter: 'none', autorestart: false }));
  writeFileSync(config, `module.exports = ${JSON.stringify({ apps })};\n`);
  const jlist = () => run(process.execPath, [pm2, 'jlist'], env);
  let pids: number[] = [];
  try {
    progress('cli ps: 20 processes under pm2');
    await run(process.execPath, [pm2, 'start', config], env);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (Date.now() > deadline) throw new Error('pm2 did not report 20 processes online within 30 s');
      const list = JSON.parse(await jlist()) as Array<{ pid: number; pm2_env: { status: string } }>;
      pids = list.map((p) => p.pid).filter((pid) => pid > 0);
      if (list.length === 20 && list.every((p) => p.pm2_env.status === 'online')) break;
    }
    return await medianMs(jlist);
  } finally {
    await run(process.execPath, [pm2, 'kill'], env).catch(() => undefined);
    const left = pids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    if (left.length > 0) throw new Error(`pm2 kill left processes ${left.join(', ')}`);
    if (existsSync(path.join(home, 'pm2.pid'))) throw new Error('pm2 kill left its daemon');
  }
}

export async function cliPsSection(): Promise<Line[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'shuma-bench-cli-'));
  const lines: Line[] = [{ heading: '(l) the CLI: `shuma ps` (a CLI process per call, through the daemon\'s socket)  vs  `pm2 jlist`' }];
  try {
    const details: Line[] = [];
    const ps20 = await shumaSide(details, dir);
    const pm2 = await pm2Side(dir);
    lines.push({ what: 'list 20 processes: shuma ps  vs  pm2 jlist (median CLI call)', unit: 'ms', shuma: ps20, baseline: pm2 ?? Number.NaN }, ...details);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return lines;
}
