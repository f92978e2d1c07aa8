// (k) The ways to start a process, side by side, as the runtime grows: the C posix_spawn loop
// (the floor), the native addon and child_process alone, then ws.run through the whole
// runtime on each spawner; and how long one spawn holds the event loop.
import { spawn } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Runtime } from '../src/index.js';
import { loadSpawnerAddon, type SpawnerAddon } from '../src/host/spawn/native-addon.js';
import { compileCSpawnLoop, type CSpawnLoop } from './c-spawn-loop.js';
import { now, progress, quantile, rateOf, rssMiB, settledHeap, type Line } from './measure.js';

const C_LOOP_SPAWNS = 2000;
/** As section (a)'s concurrent line: the C loop keeps as many children going. */
const IN_FLIGHT = 16;
const BUDGET_MS = 1500;
const SIZES_MIB = [0, 256, 1024];

interface Timed {
  perSecond: number;
  /** How long each synchronous spawn call held the event loop, in ms. */
  blocked: number[];
}

/** spawn+exit, one at a time, `op` resolving at the exit; the synchronous part timed apart. */
async function timedLoop(start: (done: () => void) => void): Promise<Timed> {
  const blocked: number[] = [];
  const rate = await rateOf(
    () =>
      new Promise<void>((resolve) => {
        const t0 = now();
        start(resolve);
        blocked.push(now() - t0);
      }),
    { concurrency: 1, budgetMs: BUDGET_MS, minOps: 20, maxOps: 5000 },
  );
  return { perSecond: rate.perSecond, blocked };
}

/** The addon alone: `spawnAsync` (what NativeSpawner uses: the clone on the addon's thread) or `spawn` (on this thread). */
function addonTrue(addon: SpawnerAddon, envp: string[], mode: 'spawn' | 'spawnAsync'): Promise<Timed> {
  const nul = addon.STDIO_NULL;
  return timedLoop((done) => {
    const started = addon[mode]('/bin/true', ['true'], envp, '/', [nul, nul, nul], [-1, -1, -1, -1], [], () => done());
    if (started instanceof Promise) started.catch((error: unknown) => progress(`spawnAsync failed: ${String(error)}`));
  });
}

function childProcessTrue(): Promise<Timed> {
  return timedLoop((done) => {
    const child = spawn('/bin/true', [], { detached: true, stdio: 'ignore' });
    child.once('exit', () => done());
  });
}

/** ws.run → exited, `concurrency` at a time (default 1), with the event loop's worst delay meanwhile. */
async function runTrue(rt: Runtime, label: string, concurrency = 1): Promise<{ perSecond: number; maxDelayMs: number; p99DelayMs: number }> {
  const ws = await rt.createWorkspace({ label });
  const delay = monitorEventLoopDelay({ resolution: 1 });
  try {
    delay.enable();
    const rate = await rateOf(
      async () => {
        const cmd = await ws.run({ exec: '/bin/true' });
        await cmd.exited;
      },
      { concurrency, budgetMs: BUDGET_MS, minOps: 20 * concurrency, maxOps: 5000 },
    );
    delay.disable();
    // The histogram counts the timer's lateness past its 1 ms resolution.
    return { perSecond: rate.perSecond, maxDelayMs: delay.max / 1e6, p99DelayMs: delay.percentile(99) / 1e6 };
  } finally {
    await ws.stop({ graceMs: 0 });
  }
}

async function atSize(rts: { native: Runtime; node: Runtime }, addon: SpawnerAddon, cLoop: CSpawnLoop, tag: string): Promise<Line[]> {
  const where = `RSS ${rssMiB().toFixed(0)} MiB`;
  progress(`spawn paths at ${where} (${tag})`);
  const envp = Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ''}`);
  // Warm-up: module code, the worker's machine code, the fs checks.
  await runTrue(rts.native, `warm-native-${tag}`);
  await runTrue(rts.node, `warm-node-${tag}`);
  const c = cLoop.rate(C_LOOP_SPAWNS);
  const cInFlight = cLoop.rate(C_LOOP_SPAWNS, IN_FLIGHT);
  const native = await addonTrue(addon, envp, 'spawnAsync');
  const nativeSync = await addonTrue(addon, envp, 'spawn');
  const node = await childProcessTrue();
  const wsNative = await runTrue(rts.native, `native-${tag}`);
  const wsNode = await runTrue(rts.node, `node-${tag}`);
  const wsNativeInFlight = await runTrue(rts.native, `native-${IN_FLIGHT}-${tag}`, IN_FLIGHT);
  return [
    { heading: `(k) spawn paths at ${where}: spawn /bin/true + exit, one at a time; baseline = C posix_spawn loop (${c.toFixed(0)}/s) unless said` },
    { what: `native addon spawnAsync+exit, ${where}`, unit: 'spawns/s', shuma: native.perSecond, baseline: c },
    { what: `native addon spawn (sync)+exit, ${where}`, unit: 'spawns/s', shuma: nativeSync.perSecond, baseline: c },
    { what: `child_process spawn+exit, ${where}`, unit: 'spawns/s', shuma: node.perSecond, baseline: c },
    { what: `ws.run → exited, native spawner, ${where}`, unit: 'runs/s', shuma: wsNative.perSecond, baseline: c },
    { what: `ws.run → exited, node spawner, ${where}`, unit: 'runs/s', shuma: wsNode.perSecond, baseline: c },
    { what: `ws.run → exited, native, ${IN_FLIGHT} in flight  vs  C loop ${IN_FLIGHT} in flight (${cInFlight.toFixed(0)}/s), ${where}`, unit: 'runs/s', shuma: wsNativeInFlight.perSecond, baseline: cInFlight },
    { what: `loop blocked by one spawnAsync call, max (vs child_process), ${where}`, unit: 'ms', shuma: Math.max(...native.blocked), baseline: Math.max(...node.blocked) },
    { what: `loop blocked by one spawnAsync call, p99 (vs child_process), ${where}`, unit: 'ms', shuma: quantile(native.blocked, 0.99), baseline: quantile(node.blocked, 0.99) },
    { what: `loop blocked by one spawnAsync call, median (vs child_process), ${where}`, unit: 'ms', shuma: quantile(native.blocked, 0.5), baseline: quantile(node.blocked, 0.5) },
    { what: `loop blocked by one sync spawn call, max (vs spawnAsync), ${where}`, unit: 'ms', shuma: Math.max(...nativeSync.blocked), baseline: Math.max(...native.blocked) },
    { what: `loop blocked by one sync spawn call, p99 (vs spawnAsync), ${where}`, unit: 'ms', shuma: quantile(nativeSync.blocked, 0.99), baseline: quantile(native.blocked, 0.99) },
    { what: `event-loop delay during ws.run, native, max (vs node spawner), ${where}`, unit: 'ms', shuma: wsNative.maxDelayMs, baseline: wsNode.maxDelayMs },
    { what: `event-loop delay during ws.run, native, p99 (vs node spawner), ${where}`, unit: 'ms', shuma: wsNative.p99DelayMs, baseline: wsNode.p99DelayMs },
  ];
}

/** Runs at rest, then holding 256 MiB, then 1 GiB of touched Buffers. */
export async function spawnPathsSection(rts: { native: Runtime; node: Runtime }): Promise<Line[]> {
  const addon = loadSpawnerAddon();
  const cLoop = compileCSpawnLoop();
  const ballast: Buffer[] = [];
  const lines: Line[] = [];
  try {
    for (const mib of SIZES_MIB) {
      const held = ballast.reduce((sum, b) => sum + b.length, 0) / 2 ** 20;
      // Every page written, so that it is resident and fork() must copy its page tables.
      if (mib > held) ballast.push(Buffer.alloc((mib - held) * 2 ** 20, 0x5a));
      lines.push(...(await atSize(rts, addon, cLoop, mib === 0 ? 'rest' : `${mib}MiB`)));
    }
  } finally {
    cLoop.remove();
    ballast.length = 0;
    settledHeap();
  }
  return lines;
}
