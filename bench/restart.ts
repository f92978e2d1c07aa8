// (b) Restart latency: /bin/false relaunched at once, N times, by shuma's restart policy,
// against a bare Node loop that spawns /bin/false again on every exit; then both again beside a
// busy loop that keeps one of the two cores busy (issue 17: p95 ≤ 1.5 ms also then).
import { spawn, type ChildProcess } from 'node:child_process';
import type { ActorSnapshot, Runtime } from '../src/index.js';
import { coreOf } from '../src/host/runtime.js';
import type { SpawnedProcess, Spawner } from '../src/host/spawn/spawner.js';
import { now, progress, quantile, type Line } from './measure.js';

/** When each run was seen running, and when its exit was seen, by run number (0 = first). */
interface Timeline {
  startedAt: number[];
  exitedAt: number[];
  /** Host side: the spawner told the exit of run k, and the next child had exec'd. */
  exitToldAt: number[];
  execedAt: number[];
}

/**
 * The host's own view, from inside (bench only): the snapshots above are seen after a hop from
 * the worker, and a spawner that blocks the loop (fork) delays the `restarting` snapshot until
 * its spawn is done, which hides its cost from "exit seen → running". Wrapping the spawner
 * times the restart from the exit as the spawner told it to the next child's exec.
 */
function tapSpawner(rt: Runtime, timeline: Timeline): () => void {
  const host = (coreOf(rt).placements.local as unknown as { host: { deps: { spawner: Spawner } } }).host;
  const spawner = host.deps.spawner;
  const tap = (child: SpawnedProcess) => {
    timeline.execedAt.push(now());
    child.onExit(() => timeline.exitToldAt.push(now()));
    return child;
  };
  host.deps.spawner = {
    name: spawner.name,
    appliesLimits: spawner.appliesLimits,
    ...(spawner.actsAhead !== undefined ? { actsAhead: spawner.actsAhead } : {}),
    spawn: async (order) => tap(await spawner.spawn(order)),
  };
  return () => (host.deps.spawner = spawner);
}

interface RestartFigures {
  /** Exit of run k-1 seen → run k seen running. */
  gaps: number[];
  /** Exit of run k-1 told by the spawner → run k exec'd (host side; empty for the bare loop). */
  hostGaps: number[];
  /** Run k-1 seen running → run k seen running. */
  cycles: number[];
  totalMs: number;
}

function figures(timeline: Timeline, restarts: number): RestartFigures {
  const gaps: number[] = [];
  const cycles: number[] = [];
  const hostGaps: number[] = [];
  for (let k = 1; k <= restarts; k++) {
    gaps.push(timeline.startedAt[k]! - timeline.exitedAt[k - 1]!);
    cycles.push(timeline.startedAt[k]! - timeline.startedAt[k - 1]!);
    if (timeline.execedAt[k] !== undefined) hostGaps.push(timeline.execedAt[k]! - timeline.exitToldAt[k - 1]!);
  }
  return { gaps, hostGaps, cycles, totalMs: timeline.startedAt[restarts]! - timeline.startedAt[0]! };
}

function stateOf(snapshot: ActorSnapshot): string {
  return typeof snapshot.value === 'string' ? snapshot.value : (Object.keys(snapshot.value)[0] ?? '');
}

/**
 * shuma: the command actor's snapshots say when a run is `running` and when its exit was
 * handled (`backoff`, or `gaveUp` after the last one). Both are seen on the main thread,
 * after the hop from the worker, so the gap covers the whole way round: exit → worker →
 * backoff timer → spawn request → spawn → worker → snapshot.
 */
async function shumaTimeline(rt: Runtime, restarts: number): Promise<Timeline> {
  const ws = await rt.createWorkspace({ label: 'restart-bench' });
  const timeline: Timeline = { startedAt: [], exitedAt: [], exitToldAt: [], execedAt: [] };
  const untap = tapSpawner(rt, timeline);
  try {
    const cmd = await ws.run({
      exec: '/bin/false',
      restart: { onFailure: true, backoffMs: 0, maxBackoffMs: 0, maxRestarts: restarts },
    });
    // run() resolves as the actor's `running` snapshot of the first run arrives (what the promise
    // says, the actor says): that moment is the first run's start as seen here; later ones are
    // seen by subscribing now.
    timeline.startedAt[0] = now();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no gaveUp after 60 s (${timeline.startedAt.length} runs seen)`)), 60_000);
      const unsubscribe = cmd.subscribe((snapshot) => {
        const at = now();
        const run = snapshot.context.restarts;
        if (typeof run !== 'number') return;
        const state = stateOf(snapshot);
        if (state === 'running') timeline.startedAt[run] ??= at;
        if (state === 'backoff' || state === 'gaveUp') timeline.exitedAt[run] ??= at;
        // With no backoff the exit leads straight to `restarting`, already counting the next run.
        if (state === 'restarting') timeline.exitedAt[run - 1] ??= at;
        if (state === 'gaveUp') {
          clearTimeout(timer);
          unsubscribe();
          resolve();
        }
      });
    });
    return timeline;
  } finally {
    untap();
    await ws.stop({ graceMs: 0 });
  }
}

/** Bare Node: spawn /bin/false (as shuma's spawner does) and, on its exit, spawn it again. */
function bareTimeline(restarts: number): Promise<Timeline> {
  const timeline: Timeline = { startedAt: [], exitedAt: [], exitToldAt: [], execedAt: [] };
  return new Promise((resolve, reject) => {
    const launch = (run: number) => {
      const child = spawn('/bin/false', [], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      child.once('error', reject);
      child.once('spawn', () => (timeline.startedAt[run] = now()));
      child.once('exit', () => {
        timeline.exitedAt[run] = now();
        if (run < restarts) launch(run + 1);
        else resolve(timeline);
      });
    };
    launch(0);
  });
}

/** The round whose median gap is lowest: other work on the machine only ever adds to it. */
function bestRound(rounds: readonly RestartFigures[]): RestartFigures {
  return rounds.reduce((a, b) => (quantile(b.gaps, 0.5) < quantile(a.gaps, 0.5) ? b : a));
}

/** Bare and shuma alternate, twice each; the round with the lowest median of each counts. */
async function measureRounds(rt: Runtime, restarts: number): Promise<{ bare: RestartFigures; shuma: RestartFigures }> {
  const bareRounds: RestartFigures[] = [];
  const shumaRounds: RestartFigures[] = [];
  for (let round = 0; round < 2; round++) {
    bareRounds.push(figures(await bareTimeline(restarts), restarts));
    shumaRounds.push(figures(await shumaTimeline(rt, restarts), restarts));
  }
  return { bare: bestRound(bareRounds), shuma: bestRound(shumaRounds) };
}

/**
 * A shell's empty loop, in a session of its own (another program's work, in a scheduling
 * autogroup of its own): one of the two cores is busy while it runs.
 */
function startBusyLoop(): Promise<ChildProcess> {
  const child = spawn('/bin/sh', ['-c', 'while :; do :; done'], { detached: true, stdio: 'ignore' });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => resolve(child));
  });
}

async function stopBusyLoop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

export async function restartSection(rt: Runtime, restarts: number): Promise<Line[]> {
  const spawner = (await rt.health()).spawner;
  progress(`restart /bin/false ${restarts} times (${spawner} spawner)`);
  // Warm-up of both paths, not counted.
  await bareTimeline(20);
  await shumaTimeline(rt, 20);
  const { bare, shuma } = await measureRounds(rt, restarts);
  progress(`the same beside a busy loop (${spawner} spawner)`);
  const busyLoop = await startBusyLoop();
  let busy: { bare: RestartFigures; shuma: RestartFigures };
  try {
    busy = await measureRounds(rt, restarts);
  } finally {
    await stopBusyLoop(busyLoop);
  }
  return [
    { heading: `(b) restart latency, ${spawner} spawner: /bin/false, restart {onFailure, backoffMs: 0, maxRestarts: ${restarts}}  vs  respawn on 'exit'` },
    { what: 'host: exit told → next child exec\'d, median', unit: 'ms', shuma: quantile(shuma.hostGaps, 0.5), baseline: quantile(bare.gaps, 0.5) },
    { what: 'host: exit told → next child exec\'d, p95', unit: 'ms', shuma: quantile(shuma.hostGaps, 0.95), baseline: quantile(bare.gaps, 0.95) },
    { what: 'exit seen → next run running, median', unit: 'ms', shuma: quantile(shuma.gaps, 0.5), baseline: quantile(bare.gaps, 0.5) },
    { what: 'exit seen → next run running, p95', unit: 'ms', shuma: quantile(shuma.gaps, 0.95), baseline: quantile(bare.gaps, 0.95) },
    { what: 'run started → next run started, median', unit: 'ms', shuma: quantile(shuma.cycles, 0.5), baseline: quantile(bare.cycles, 0.5) },
    { what: 'run started → next run started, p95', unit: 'ms', shuma: quantile(shuma.cycles, 0.95), baseline: quantile(bare.cycles, 0.95) },
    {
      what: `sustained restarts (${restarts} / total time)`,
      unit: 'restarts/s',
      shuma: (restarts * 1000) / shuma.totalMs,
      baseline: (restarts * 1000) / bare.totalMs,
    },
    { what: 'busy second core: exit told → next exec\'d, median', unit: 'ms', shuma: quantile(busy.shuma.hostGaps, 0.5), baseline: quantile(busy.bare.gaps, 0.5) },
    { what: 'busy second core: exit told → next exec\'d, p95', unit: 'ms', shuma: quantile(busy.shuma.hostGaps, 0.95), baseline: quantile(busy.bare.gaps, 0.95) },
    { what: 'busy second core: exit seen → next run running, median', unit: 'ms', shuma: quantile(busy.shuma.gaps, 0.5), baseline: quantile(busy.bare.gaps, 0.5) },
  ];
}
