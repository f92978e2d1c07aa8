// (a) Spawn rate of /bin/true through the public API against child_process.spawn in the same
// process, one at a time and 16 in flight, first as the process is, then holding 1 GiB; and the
// same rates against the floor, a C posix_spawn loop as many in flight (issue 17's rows).
import { spawn } from 'node:child_process';
import type { Runtime } from '../src/index.js';
import { compileCSpawnLoop, type CSpawnLoop } from './c-spawn-loop.js';
import { best, progress, rateOf, rssMiB, settledHeap, type Line, type Rate, type RateOptions } from './measure.js';

const CONCURRENT = 16;
const BALLAST_BYTES = 2 ** 30;
/**
 * Runs before the "warm" rows: V8 optimises the runtime's hot paths over the first thousands of
 * runs (s31 traced ~740 TurboFan compiles over 3,000 runs, ~1.4 ms of background CPU a run at 16
 * in flight), which the rows after 20 runs of warm-up still pay. A daemon pays them once.
 */
const STEADY_WARMUP_RUNS = 3000;

/**
 * The bare baseline spawns the way shuma's NodeSpawner does (own process group, stdout and
 * stderr captured, stdin ignored) and waits for `close`, as `cmd.exited` does: the ratio is
 * then the cost of shuma itself, not of different spawn options.
 */
function bareTrue(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/true', [], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.once('error', reject);
    child.once('close', () => resolve());
  });
}

/**
 * Rate through shuma, in a workspace of its own: a workspace keeps every finished command
 * (and the worker keeps its command actor) until it stops, so a long-lived one grows.
 */
async function shumaRate(rt: Runtime, label: string, options: RateOptions): Promise<Rate> {
  const ws = await rt.createWorkspace({ label });
  try {
    return await rateOf(async () => {
      const cmd = await ws.run({ exec: '/bin/true' });
      await cmd.exited;
    }, options);
  } finally {
    await ws.stop({ graceMs: 0 });
  }
}

interface Trio {
  shuma: Rate;
  bare: Rate;
  /** The C loop's spawns per second, as many in flight. */
  c: number;
}

/**
 * Bare, shuma and the C loop alternate, twice each, each for the same budget; the better of
 * each one's runs counts. (The C loop once after them all, for a fixed count, met another
 * minute's load: on a shared machine its rate moved by 2× between runs.)
 */
async function measureTrio(rt: Runtime, cLoop: CSpawnLoop, name: string, options: RateOptions): Promise<Trio> {
  const bare: Rate[] = [];
  const shuma: Rate[] = [];
  const c: number[] = [];
  for (let round = 0; round < 2; round++) {
    bare.push(await rateOf(bareTrue, options));
    shuma.push(await shumaRate(rt, `${name}-${round}`, options));
    c.push(cLoop.rateFor(options.budgetMs, options.concurrency));
  }
  return { shuma: best(shuma), bare: best(bare), c: Math.max(...c) };
}

async function measureAtCurrentSize(rt: Runtime, cLoop: CSpawnLoop, tag: string, budgetMs: number): Promise<Line[]> {
  const rss = rssMiB();
  progress(`spawn /bin/true at RSS ${rss.toFixed(0)} MiB (${tag})`);
  // Warm both paths up: module code, the worker's machine code, the fs checks.
  await rateOf(bareTrue, { concurrency: 1, budgetMs: 0, minOps: 20, maxOps: 20 });
  await shumaRate(rt, 'warmup', { concurrency: 1, budgetMs: 0, minOps: 20, maxOps: 20 });
  const seq = await measureTrio(rt, cLoop, `seq-${tag}`, { concurrency: 1, budgetMs, minOps: 20, maxOps: 5000 });
  const par = await measureTrio(rt, cLoop, `par-${tag}`, { concurrency: CONCURRENT, budgetMs, minOps: 40, maxOps: 5000 });
  const where = `RSS ${rss.toFixed(0)} MiB`;
  const lines: Line[] = [
    { what: `spawn /bin/true, 1 at a time, ${where}`, unit: 'spawns/s', shuma: seq.shuma.perSecond, baseline: seq.bare.perSecond },
    { what: `spawn /bin/true, ${CONCURRENT} in flight, ${where}`, unit: 'spawns/s', shuma: par.shuma.perSecond, baseline: par.bare.perSecond },
    { what: `ws.run → exited, 1 at a time  vs  C posix_spawn loop, ${where}`, unit: 'runs/s', shuma: seq.shuma.perSecond, baseline: seq.c },
    { what: `ws.run → exited, ${CONCURRENT} in flight  vs  C loop ${CONCURRENT} in flight, ${where}`, unit: 'runs/s', shuma: par.shuma.perSecond, baseline: par.c },
  ];
  if (warmed.has(rt)) return lines;
  // The same two rows once V8 has compiled what it will (only the first size: the second comes after).
  progress(`${STEADY_WARMUP_RUNS} runs of warm-up, then the C-loop rows again`);
  await shumaRate(rt, 'steady-warmup', { concurrency: CONCURRENT, budgetMs: 0, minOps: STEADY_WARMUP_RUNS, maxOps: STEADY_WARMUP_RUNS });
  warmed.add(rt);
  const seqWarm = await measureTrio(rt, cLoop, `seq-warm-${tag}`, { concurrency: 1, budgetMs, minOps: 20, maxOps: 5000 });
  const parWarm = await measureTrio(rt, cLoop, `par-warm-${tag}`, { concurrency: CONCURRENT, budgetMs, minOps: 40, maxOps: 5000 });
  lines.push(
    { what: `ws.run → exited, 1 at a time  vs  C loop, ${where}, after ${STEADY_WARMUP_RUNS} runs`, unit: 'runs/s', shuma: seqWarm.shuma.perSecond, baseline: seqWarm.c },
    { what: `ws.run → exited, ${CONCURRENT} in flight  vs  C loop, ${where}, after ${STEADY_WARMUP_RUNS} runs`, unit: 'runs/s', shuma: parWarm.shuma.perSecond, baseline: parWarm.c },
  );
  return lines;
}

/** Runtimes already given the long warm-up (the "after N runs" rows are measured once per runtime). */
const warmed = new WeakSet<Runtime>();

/** A 1 GiB buffer with every page written, so that it is resident and fork() must copy its page tables. */
function allocateBallast(): Buffer {
  return Buffer.alloc(BALLAST_BYTES, 0x5a);
}

export async function spawnSection(rt: Runtime): Promise<Line[]> {
  const spawner = (await rt.health()).spawner;
  const lines: Line[] = [{ heading: `(a) spawn rate, ${spawner} spawner: ws.run({exec: "/bin/true"}) + exited  vs  child_process.spawn + close (or a C loop)` }];
  const cLoop = compileCSpawnLoop();
  let ballast: Buffer | null = null;
  try {
    lines.push(...(await measureAtCurrentSize(rt, cLoop, 'small', 1500)));
    ballast = allocateBallast();
    lines.push(...(await measureAtCurrentSize(rt, cLoop, '1GiB', 1500)));
  } finally {
    cLoop.remove();
    // Keep the buffer referenced until here, then let it go before the next section.
    if (ballast) progress(`ballast of ${ballast.length / 2 ** 20} MiB released`);
    ballast = null;
    settledHeap();
  }
  return lines;
}
