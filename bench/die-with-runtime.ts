// (n) What dying with the runtime costs a spawn, at the spawner, the rest of the runtime aside:
// the native spawner with PR_SET_PDEATHSIG requested in the child against without, and
// child_process wrapped in `setpriv --pdeathsig KILL` (one more exec, and the program's check
// before the fork) against unwrapped. Same process, same run, /bin/true one at a time.
import { launchOrder } from '../src/host/spawn/launcher.js';
import { NativeSpawner } from '../src/host/spawn/native-spawner.js';
import { NodeSpawner } from '../src/host/spawn/node-spawner.js';
import type { Spawner, SpawnOrder } from '../src/host/spawn/spawner.js';
import { best, progress, rateOf, type Line, type Rate } from './measure.js';

const ENV = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
const TRUE: SpawnOrder = { file: '/bin/true', argv0: 'true', args: [], env: ENV, cwd: '/' };

async function runOnce(spawner: Spawner, order: SpawnOrder): Promise<void> {
  const child = await spawner.spawn(order);
  child.stdout?.resume();
  child.stderr?.resume();
  await new Promise<void>((resolve) => child.onExit(() => resolve()));
}

function rate(spawner: Spawner, order: SpawnOrder): Promise<Rate> {
  return rateOf(() => runOnce(spawner, order), { concurrency: 1, budgetMs: 1500, minOps: 20, maxOps: 5000 });
}

export async function dieWithRuntimeSection(): Promise<Line[]> {
  const lines: Line[] = [{ heading: '(n) spawn /bin/true, 1 at a time: a command that dies with the runtime  vs  one that may outlive it' }];
  const setpriv = '/usr/bin/setpriv';
  const cases: Array<[string, Spawner, SpawnOrder, SpawnOrder]> = [];
  try {
    const native = new NativeSpawner();
    cases.push(['native spawner: prctl(PR_SET_PDEATHSIG) in the child', native, { ...TRUE, dieWithRuntime: true }, { ...TRUE, dieWithRuntime: false }]);
  } catch (error) {
    progress(`native spawner unavailable: ${(error as Error).message}`);
  }
  const node = new NodeSpawner();
  const wrapping = { prlimit: null, setpriv, limits: undefined, cgroupProcsFiles: [] };
  cases.push([
    'child_process: setpriv --pdeathsig KILL wrapper',
    node,
    launchOrder(TRUE, { ...wrapping, dieWithRuntime: true }, false),
    launchOrder(TRUE, { ...wrapping, dieWithRuntime: false }, false),
  ]);
  for (const [what, spawner, dying, outliving] of cases) {
    progress(`die with the runtime: ${what}`);
    await rate(spawner, dying);
    await rate(spawner, outliving);
    const a: Rate[] = [];
    const b: Rate[] = [];
    // Alternating, twice each: the better of each pair counts.
    for (let round = 0; round < 2; round++) {
      a.push(await rate(spawner, dying));
      b.push(await rate(spawner, outliving));
    }
    lines.push({ what, unit: 'spawns/s', shuma: best(a).perSecond, baseline: best(b).perSecond });
  }
  return lines;
}
