// The crash drill: a runtime in a child process (test/crash-child.ts) creates workspaces, runs
// commands, restarts a crash-looping one, runs pipelines, saves pipelines and stops workspaces,
// while the test SIGKILLs it at a random moment; then a new runtime opens the same stateDir.
// Every cycle: the snapshot decodes (or is set aside with a warning), every process of the dead
// runtime is killed or adopted, and nothing is left once the new runtime shuts down. Rounds
// alternate the orphan policy ('kill', 'adopt'). Short in `npm test`; SHUMA_SLOW=1 runs 50.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createRuntime, type Runtime } from '../src/index.js';
import { startChildRuntime } from './child-runtime.js';
import { processesMentioning } from './helpers.js';

const ROUNDS = process.env.SHUMA_SLOW ? 50 : 4;
const CRASH_CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'crash-child.js');
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Whether `pid` descends from one of `roots` (parent links in /proc). */
function isDescendantOf(pid: number, roots: ReadonlySet<number>): boolean {
  for (let current = pid, hops = 0; current > 1 && hops < 64; hops++) {
    if (roots.has(current)) return true;
    try {
      const stat = readFileSync(`/proc/${current}/stat`, 'latin1');
      current = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      return false; // exited while we looked
    }
  }
  return false;
}

/** The pids of every live command of the runtime: its own runs and the ones it adopted. */
async function livePids(rt: Runtime): Promise<Set<number>> {
  const ours = new Set<number>();
  for (const info of await rt.listWorkspaces()) {
    for (const c of (await rt.workspace(info.id)?.commands()) ?? []) if (c.alive) ours.add(c.pid);
  }
  return ours;
}

/** "N process(es) … were killed|adopted" in the warnings, summed. */
function counted(warnings: readonly string[], verb: 'killed' | 'adopted'): number {
  let sum = 0;
  for (const w of warnings) {
    const m = new RegExp(`^(\\d+) process\\(es\\) left running by a runtime that died .* were ${verb}`).exec(w);
    if (m) sum += Number(m[1]);
  }
  return sum;
}

test(`crash drill: SIGKILLed at random moments ${ROUNDS} times, orphans 'kill' and 'adopt' in turn: snapshots decode, every old process is killed or adopted, nothing leaks`, async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'shuma-drill-'));
  dirs.push(root);
  const dir = path.join(root, 'state');
  const marker = `shuma-drill-${process.pid}`;
  const totals = { killed: 0, adopted: 0, restored: 0, setAside: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    const orphans = round % 2 === 0 ? 'kill' : 'adopt';
    const { child, release } = startChildRuntime(CRASH_CHILD, [dir, marker, orphans], dir);
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`round ${round}: the crash child exited early (${code})`)));
    });
    // A random moment of its work: creating, running, restarting, saving or stopping.
    const workMs = Math.round(20 + Math.random() * 300);
    await new Promise((resolve) => setTimeout(resolve, workMs));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;

    const rt = await createRuntime({ stateDir: dir, workers: 1, statsIntervalMs: 0, orphans });
    try {
      const setAside = rt.warnings.filter((w) => /could not be read|not a shuma state/.test(w));
      // Written atomically (temp file, fsync, rename): a kill never leaves a torn snapshot.
      assert.deepEqual(setAside, [], `round ${round}: a snapshot was set aside`);
      // Every process of the dead runtime is accounted for: killed, adopted, or started again by
      // a restored supervisor (such a spawn may be under way: look again until every one is).
      const unaccounted = async () => {
        const ours = await livePids(rt);
        return processesMentioning(marker).filter((pid) => !ours.has(pid) && !isDescendantOf(pid, ours));
      };
      let strays = await unaccounted();
      for (const deadline = Date.now() + 5_000; strays.length > 0 && Date.now() < deadline; strays = await unaccounted()) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.deepEqual(strays, [], `round ${round} (${orphans}): processes left unaccounted`);
      const found = {
        restored: (await rt.listWorkspaces()).length,
        killed: counted(rt.warnings, 'killed'),
        adopted: counted(rt.warnings, 'adopted'),
      };
      if (orphans === 'kill') assert.equal(found.adopted, 0, `round ${round}: 'kill' adopts nothing`);
      totals.killed += found.killed;
      totals.adopted += found.adopted;
      totals.restored += found.restored;
      totals.setAside += setAside.length;
      t.diagnostic(`round ${round} (${orphans}): killed after ${workMs} ms; ${found.restored} workspaces restored, ${found.killed} orphans killed, ${found.adopted} adopted`);
    } finally {
      await rt.shutdown({ graceMs: 0 });
    }
    assert.deepEqual(processesMentioning(marker), [], `round ${round}: the shutdown leaves none`);
    release();
  }
  t.diagnostic(`${ROUNDS} cycles: ${totals.restored} workspaces restored, ${totals.killed} orphans killed, ${totals.adopted} adopted, ${totals.setAside} snapshots set aside`);
});
