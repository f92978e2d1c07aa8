// A runtime that dies without a shutdown (SIGKILL, an OOM kill, a crash) takes its children with
// it when nothing could adopt them; with a stateDir and orphans 'adopt' they live on for the
// next runtime. See docs/reliability.md.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createRuntime } from '../src/index.js';
import { startChildRuntime } from './child-runtime.js';
import { isAlive, waitGone } from './helpers.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'die-with-runtime-child.js');
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Starts the child runtime, reads its children's pids, SIGKILLs it and waits for its exit. */
async function killedRuntime(stateDir?: string): Promise<{ pids: number[]; release: () => void }> {
  const { child, release } = startChildRuntime(CHILD, stateDir ? [stateDir] : [], stateDir);
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('\n')) resolve(out);
    });
    child.once('exit', (code) => reject(new Error(`the child runtime exited early (${code})`)));
  });
  const { pids } = JSON.parse(line) as { pids: number[] };
  assert.equal(pids.length, 4);
  assert.ok(pids.every(isAlive));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  return { pids, release };
}

test('SIGKILLed without a stateDir: its commands, supervised commands and pipeline nodes die with it', async () => {
  const { pids, release } = await killedRuntime();
  // The kernel signals them as the runtime's threads exit; each is reaped by init soon after.
  for (const pid of pids) await waitGone(pid);
  release();
});

test("SIGKILLed with a stateDir and orphans 'adopt': its children live on for the next runtime", async () => {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'shuma-dwr-'));
  dirs.push(stateDir);
  const { pids, release } = await killedRuntime(stateDir);
  assert.deepEqual(pids.filter((pid) => !isAlive(pid)), [], 'every child alive after the runtime died');
  // The next runtime on that state, with orphans 'kill', ends them: nothing is left by the test.
  const next = await createRuntime({ stateDir, workers: 1, statsIntervalMs: 0 });
  await next.shutdown({ graceMs: 0 });
  for (const pid of pids) await waitGone(pid);
  release();
});
