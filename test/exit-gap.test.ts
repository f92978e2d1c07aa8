// process.exit() runs no environment clean-up hook (native/module.c teardown never runs on the
// main thread): the 'exit' hook (core/shutdown.ts killEverythingNow) is all that ends a runtime's
// processes then. A run the native spawner's relaunch thread started at an exit the loop has not
// heard yet is in no process group the runtime knows: before s30 it died by PDEATHSIG alone as
// the thread died (no stateDir), and what it had started lived on. Now the hook first stops the
// addon's spawning threads, killing what they started and nobody was told of.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createRuntime } from '../src/index.js';
import { isAlive, killedAtTheEnd, pollUntil, processesMentioning, waitGone } from './helpers.js';
import { startChildRuntime } from './child-runtime.js';
import { cleanUpStateDirIfKilled } from './watchdog.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'exit-gap-child.js');
const scratch = mkdtempSync(path.join(tmpdir(), 'shuma-exit-gap-'));
const started = killedAtTheEnd();
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A marker GNU sleep adds to its time (its operands are summed): it names this test's processes in /proc. */
function marker(k: number): string {
  return `0.0000000${process.pid}${k}`;
}

interface Seen {
  first: number;
  /** The first run and its descendant, as they ran before the first was killed. */
  before: number[];
  pids: number[];
  relaunched: boolean;
}

/** Runs the child runtime to its process.exit(); what it saw of its processes just before. */
async function exitedRuntime(mark: string, stateDir?: string, orphans?: 'kill' | 'adopt'): Promise<Seen> {
  const { child, release } = startChildRuntime(CHILD, [mark, ...(stateDir ? [stateDir, orphans!] : [])]);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  release();
  assert.equal(code, 0, `the child runtime failed; it said: ${out}`);
  const seen = JSON.parse(out) as Seen;
  for (const pid of seen.pids) started.add(pid);
  assert.ok(seen.pids.length >= 2, 'the run and its descendant ran');
  return seen;
}

describe('process.exit() with a run just started at an exit', () => {
  for (const stateDir of [false, true]) {
    test(`nothing of the run, nor of what it started, is left${stateDir ? " (stateDir, orphans 'kill')" : ''}`, async () => {
      const mark = marker(stateDir ? 2 : 1);
      const dir = stateDir ? path.join(scratch, 'kill') : undefined;
      const withdraw = dir ? cleanUpStateDirIfKilled(dir) : () => undefined;
      const seen = await exitedRuntime(mark, dir, 'kill');
      // The relaunch and its descendant were running as the process exited (the child waited for both).
      if (seen.relaunched) assert.ok(seen.pids.length >= 4, JSON.stringify(seen));
      for (const pid of seen.pids) await waitGone(pid, 5_000);
      assert.deepEqual(processesMentioning(mark), []);
      withdraw();
    });
  }

  test("with a stateDir and orphans 'adopt', what the runtime knew lives on for the next runtime", async () => {
    const mark = marker(3);
    const dir = path.join(scratch, 'adopt');
    const withdraw = cleanUpStateDirIfKilled(dir);
    try {
      const seen = await exitedRuntime(mark, dir, 'adopt');
      // The first run's descendant: in a process group the runtime knew, left running by design.
      const descendant = seen.before.filter((pid) => pid !== seen.first);
      assert.ok(descendant.length > 0 && descendant.every(isAlive), `the told run's descendant lives on: ${JSON.stringify(seen)}`);
    } finally {
      // The next runtime on the stateDir, with orphans 'kill', ends whatever carries its mark.
      const next = await createRuntime({ stateDir: dir, workers: 1, statsIntervalMs: 0 });
      await next.shutdown({ graceMs: 0 });
      withdraw();
    }
    await pollUntil(async () => processesMentioning(mark), (pids) => pids.length === 0, 'every process of the runtime gone');
  });
});
