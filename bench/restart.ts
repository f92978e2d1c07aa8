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
  /** A run started at this exit on the spawner's own thread: when that thread saw the exit (its stamp, not the loop's). */
  exitSeenAt: number[];
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
  // performance.now() at CLOCK_MONOTONIC 0 (process.hrtime's clock, the addon's stamps').
  const monotonicToNow = () => performance.now() - Number(process.hrtime.bigint()) / 1e6;
  const tap = (child: SpawnedProcess) => {
    const run = timeline.execedAt.length;
    // Started at its predecessor's exit on the spawner's thread (standing-orders.ts): from the
    // exit as that thread saw it to the exec as it saw it, both before the loop heard either.
    if (child.startedOnExit && run > 0) {
      const offset = monotonicToNow();
      timeline.execedAt.push(child.startedOnExit.execedAt + offset);
      timeline.exitSeenAt[run - 1] = child.startedOnExit.exitSeenAt + offset;
    } else {
      timeline.execedAt.push(now());
    }
    child.onExit(() => timeline.exitToldAt.push(now()));
    return child;
  };
  host.deps.spawner = {
    name: spawner.name,
    appliesLimits: spawner.appliesLimits,
    ...(spawner.actsAhead !== undefined ? { actsAhead: spawner.actsAhead } : {}),
    spawn: async (order) => tap(await spawner.spawn(order)),
    ...(spawner.armRelaunch && spawner.disarmRelaunch && spawner.relaunched
      ? {
          armRelaunch: spawner.armRelaunch.bind(spawner),
          disarmRelaunch: spawner.disarmRelaunch.bind(spawner),
          relaunched: (pid: number) => spawner.relaunched!(pid)?.then(tap),
        }
      : {}),
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
    if (timeline.execedAt[k] !== undefined) hostGaps.push(timeline.execedAt[k]! - (timeline.exitSeenAt[k - 1] ?? timeline.exitToldAt[k - 1]!));
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
  const timeline: Timeline = { startedAt: [], exitedAt: [], exitToldAt: [], execedAt: [], exitSeenAt: [] };
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
  const timeline: Timeline = { startedAt: [], exitedAt: [], exitToldAt: [], execedAt: [], exitSeenAt: [] };
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

/** One round's figures, as the rows show them. */
interface RoundFigures {
  hostMedian: number;
  hostP95: number;
  gapMedian: number;
  gapP95: number;
  cycleMedian: number;
  cycleP95: number;
  perSecond: number;
}

function roundFigures(f: RestartFigures, restarts: number): RoundFigures {
  return {
    hostMedian: quantile(f.hostGaps, 0.5),
    hostP95: quantile(f.hostGaps, 0.95),
    gapMedian: quantile(f.gaps, 0.5),
    gapP95: quantile(f.gaps, 0.95),
    cycleMedian: quantile(f.cycles, 0.5),
    cycleP95: quantile(f.cycles, 0.95),
    perSecond: (restarts * 1000) / f.totalMs,
  };
}

/**
 * Each figure is the median of that figure over the rounds: a p95 of one round moves by 2x from
 * round to round on a shared machine, and the round picked for its low median (as before s25)
 * said little of its p95.
 */
function medianRound(rounds: readonly RoundFigures[]): RoundFigures {
  const keys = Object.keys(rounds[0]!) as Array<keyof RoundFigures>;
  return Object.fromEntries(keys.map((key) => [key, quantile(rounds.map((round) => round[key]), 0.5)])) as unknown as RoundFigures;
}

const ROUNDS = 3;

/** Bare and shuma alternate, ROUNDS times each. */
async function measureRounds(rt: Runtime, restarts: number): Promise<{ bare: RoundFigures; shuma: RoundFigures }> {
  const bareRounds: RoundFigures[] = [];
  const shumaRounds: RoundFigures[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    bareRounds.push(roundFigures(figures(await bareTimeline(restarts), restarts), restarts));
    shumaRounds.push(roundFigures(figures(await shumaTimeline(rt, restarts), restarts), restarts));
  }
  return { bare: medianRound(bareRounds), shuma: medianRound(shumaRounds) };
}

/**
 * A shell's empty loop, in a session of its own (another program's work, in a scheduling
 * autogroup of its own): one of the two cores is busy while it runs. It looks for the bench
 * every 20,000 turns and ends without it: a bench killed mid-section (a timeout's SIGTERM, a
 * SIGKILL) runs no cleanup, and a loop of its own session would have burnt a core for good.
 */
const BUSY_WHILE_BENCH_LIVES = 'while kill -0 "$1" 2>/dev/null; do i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; done';

function startBusyLoop(): Promise<ChildProcess> {
  const child = spawn('/bin/sh', ['-c', BUSY_WHILE_BENCH_LIVES, 'busy-loop', String(process.pid)], { detached: true, stdio: 'ignore' });
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
  let busy: { bare: RoundFigures; shuma: RoundFigures };
  try {
    busy = await measureRounds(rt, restarts);
  } finally {
    await stopBusyLoop(busyLoop);
  }
  // The bare loop has no host side: its exit → exec'd is its exit → 'spawn' event.
  return [
    { heading: `(b) restart latency, ${spawner} spawner: /bin/false, restart {onFailure, backoffMs: 0, maxRestarts: ${restarts}}  vs  respawn on 'exit'; medians of ${ROUNDS} rounds` },
    { what: 'host: exit told → next child exec\'d, median', unit: 'ms', shuma: shuma.hostMedian, baseline: bare.gapMedian },
    { what: 'host: exit told → next child exec\'d, p95', unit: 'ms', shuma: shuma.hostP95, baseline: bare.gapP95 },
    { what: 'exit seen → next run running, median', unit: 'ms', shuma: shuma.gapMedian, baseline: bare.gapMedian },
    { what: 'exit seen → next run running, p95', unit: 'ms', shuma: shuma.gapP95, baseline: bare.gapP95 },
    { what: 'run started → next run started, median', unit: 'ms', shuma: shuma.cycleMedian, baseline: bare.cycleMedian },
    { what: 'run started → next run started, p95', unit: 'ms', shuma: shuma.cycleP95, baseline: bare.cycleP95 },
    { what: `sustained restarts (${restarts} / total time)`, unit: 'restarts/s', shuma: shuma.perSecond, baseline: bare.perSecond },
    { what: 'busy second core: exit told → next exec\'d, median', unit: 'ms', shuma: busy.shuma.hostMedian, baseline: busy.bare.gapMedian },
    { what: 'busy second core: exit told → next exec\'d, p95', unit: 'ms', shuma: busy.shuma.hostP95, baseline: busy.bare.gapP95 },
    { what: 'busy second core: exit seen → next run running, median', unit: 'ms', shuma: busy.shuma.gapMedian, baseline: busy.bare.gapMedian },
  ];
}
