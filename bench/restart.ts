// (b) Restart latency: a program that fails at once (like /bin/false) relaunched at once, N times,
// by shuma's restart policy, against a bare Node loop that spawns it again on every exit; then
// both again beside a busy loop that keeps one of the two cores busy (issue 17: p95 ≤ 1.5 ms also
// then).
//
// Three measures, each the same on both sides, each saying what it spans (s30):
// - the row as issue 17 names it, **exit told → next exec**: from the moment the supervisor learns
//   of the exit to the next program's first instruction. Told: shuma's relaunch thread woken for
//   the exit (its epoll_wait returned: a stamp in the addon, before its reap), or the loop's exit
//   listener where no relaunch was armed; the bare loop's `exit` callback. Next exec: a program
//   built without a C library stamps CLOCK_MONOTONIC at `_start` (stamping-programs.ts). It
//   leaves out the exiting program's own teardown and the kernel's exit before anyone is told,
//   and any C library start-up after the exec.
// - s29's measure, **the program's last stamp → the next run's first**, with s29's program (static
//   glibc, stamping in `main`): it adds the kernel's exit before the supervisor is told and ~1 ms
//   of the C library's start-up after the exec. Kept so that no figure moves by a definition.
// - the parent's own view, **exit reaped → the parent resumed after the next exec**: shuma's
//   relaunch thread after its waitid → its clone returned; the bare loop's `exit` event (Node's
//   waitpid runs just before it) → spawn() returned (Node's spawn waits for the exec).
import { spawn, type ChildProcess } from 'node:child_process';
import type { ActorSnapshot, Runtime } from '../src/index.js';
import { coreOf } from '../src/host/runtime.js';
import type { SpawnedProcess, Spawner } from '../src/host/spawn/spawner.js';
import { now, progress, quantile, type Line } from './measure.js';
import { compileStampingPrograms, monotonicToNow, type StampingProgram, type StampingPrograms } from './stamping-programs.js';

/** When each run was seen running, and when its exit was seen, by run number (0 = first). */
interface Timeline {
  startedAt: number[];
  exitedAt: number[];
  /** Parent side: the exit of run k reaped, and the parent resumed after the next child's exec. */
  exitToldAt: number[];
  execedAt: number[];
  /** A run started at this exit on the spawner's own thread: when that thread saw the exit (its stamp, not the loop's). */
  exitSeenAt: number[];
  /** The same thread woken for that exit, before its reap: "exit told" where it relaunched. */
  exitWokeAt: number[];
  /** The program's own first and last stamps, by run. */
  programAt: Array<[number, number]>;
}

const emptyTimeline = (): Timeline => ({ startedAt: [], exitedAt: [], exitToldAt: [], execedAt: [], exitSeenAt: [], exitWokeAt: [], programAt: [] });

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
    const run = timeline.execedAt.length;
    // Started at its predecessor's exit on the spawner's thread (standing-orders.ts): from the
    // exit as that thread saw it to the exec as it saw it, both before the loop heard either.
    if (child.startedOnExit && run > 0) {
      const offset = monotonicToNow();
      timeline.execedAt.push(child.startedOnExit.execedAt + offset);
      timeline.exitSeenAt[run - 1] = child.startedOnExit.exitSeenAt + offset;
      timeline.exitWokeAt[run - 1] = child.startedOnExit.exitWokeAt + offset;
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
  /** Run k-1's exit told (see the file's head) → run k's first stamp. */
  toldGaps: number[];
  /** The program's last stamp in run k-1 → its exit told. */
  untoldGaps: number[];
  /** The program's last stamp in run k-1 → its first in run k. */
  programGaps: number[];
  /** The program's last stamp in run k-1 → the parent reaped it. */
  reapGaps: number[];
  /** The parent resumed after run k's exec → the program's first stamp in run k. */
  startGaps: number[];
  /** Exit of run k-1 seen → run k seen running. */
  gaps: number[];
  /** Exit of run k-1 reaped → the parent resumed after run k's exec. */
  hostGaps: number[];
  /** Run k-1 seen running → run k seen running. */
  cycles: number[];
  totalMs: number;
}

function figures(timeline: Timeline, restarts: number): RestartFigures {
  const gaps: number[] = [];
  const cycles: number[] = [];
  const hostGaps: number[] = [];
  const programGaps: number[] = [];
  const reapGaps: number[] = [];
  const startGaps: number[] = [];
  const toldGaps: number[] = [];
  const untoldGaps: number[] = [];
  if (timeline.programAt.length !== restarts + 1) throw new Error(`${timeline.programAt.length} runs stamped, ${restarts + 1} expected`);
  for (let k = 1; k <= restarts; k++) {
    gaps.push(timeline.startedAt[k]! - timeline.exitedAt[k - 1]!);
    cycles.push(timeline.startedAt[k]! - timeline.startedAt[k - 1]!);
    const reapedAt = timeline.exitSeenAt[k - 1] ?? timeline.exitToldAt[k - 1]!;
    const toldAt = timeline.exitWokeAt[k - 1] ?? timeline.exitToldAt[k - 1]!;
    toldGaps.push(timeline.programAt[k]![0] - toldAt);
    untoldGaps.push(toldAt - timeline.programAt[k - 1]![1]);
    hostGaps.push(timeline.execedAt[k]! - reapedAt);
    programGaps.push(timeline.programAt[k]![0] - timeline.programAt[k - 1]![1]);
    reapGaps.push(reapedAt - timeline.programAt[k - 1]![1]);
    startGaps.push(timeline.programAt[k]![0] - timeline.execedAt[k]!);
  }
  return { toldGaps, untoldGaps, programGaps, reapGaps, startGaps, gaps, hostGaps, cycles, totalMs: timeline.startedAt[restarts]! - timeline.startedAt[0]! };
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
async function shumaTimeline(rt: Runtime, program: StampingProgram, restarts: number): Promise<Timeline> {
  const ws = await rt.createWorkspace({ label: 'restart-bench' });
  const timeline = emptyTimeline();
  program.fresh();
  const untap = tapSpawner(rt, timeline);
  try {
    const cmd = await ws.run({
      exec: program.file,
      argv: [program.stamps],
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
    timeline.programAt = program.read();
    return timeline;
  } finally {
    untap();
    await ws.stop({ graceMs: 0 });
  }
}

/** Bare Node: spawn the program (as shuma's spawner does: a session of its own, pipes) and, on its exit, spawn it again. */
function bareTimeline(program: StampingProgram, restarts: number): Promise<Timeline> {
  const timeline = emptyTimeline();
  program.fresh();
  return new Promise((resolve, reject) => {
    const launch = (run: number) => {
      const child = spawn(program.file, [program.stamps], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      // Node's spawn returns once the child has exec'd (or failed to).
      timeline.execedAt[run] = now();
      child.once('error', reject);
      child.once('spawn', () => (timeline.startedAt[run] = now()));
      child.once('exit', () => {
        const at = now();
        timeline.exitedAt[run] = at;
        timeline.exitToldAt[run] = at;
        if (run < restarts) launch(run + 1);
        else {
          timeline.programAt = program.read();
          resolve(timeline);
        }
      });
    };
    launch(0);
  });
}

/** One round's figures, as the rows show them. */
interface RoundFigures {
  toldMedian: number;
  toldP95: number;
  untoldMedian: number;
  programMedian: number;
  programP95: number;
  reapMedian: number;
  startMedian: number;
  startP95: number;
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
    toldMedian: quantile(f.toldGaps, 0.5),
    toldP95: quantile(f.toldGaps, 0.95),
    untoldMedian: quantile(f.untoldGaps, 0.5),
    programMedian: quantile(f.programGaps, 0.5),
    programP95: quantile(f.programGaps, 0.95),
    reapMedian: quantile(f.reapGaps, 0.5),
    startMedian: quantile(f.startGaps, 0.5),
    startP95: quantile(f.startGaps, 0.95),
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

/**
 * Restarts of warm-up before the steady rows, each side, split between the two programs: the
 * first rows come after 20 a program, so their rounds include V8's TurboFan compiles of the
 * restart path (restart-s31 traced 312 over the first 1,800 restarts, 3 in the last round), as
 * bench (a)'s first rows did (its steady rows: STEADY_WARMUP_RUNS in spawn.ts).
 */
const STEADY_WARMUP_RESTARTS = 3000;

interface Sides {
  bare: RoundFigures;
  shuma: RoundFigures;
}

/** Both programs' figures (the first-instruction one: the row and the parent's view; s29's: its measure). */
interface Measured {
  firstInstruction: Sides;
  libcMain: Sides;
}

/** Bare and shuma alternate, ROUNDS times each, with each program in turn. */
async function measureRounds(rt: Runtime, programs: StampingPrograms, restarts: number): Promise<Measured> {
  const rounds = { firstInstruction: { bare: [] as RoundFigures[], shuma: [] as RoundFigures[] }, libcMain: { bare: [] as RoundFigures[], shuma: [] as RoundFigures[] } };
  for (let round = 0; round < ROUNDS; round++) {
    for (const which of ['firstInstruction', 'libcMain'] as const) {
      const program = programs[which];
      rounds[which].bare.push(roundFigures(figures(await bareTimeline(program, restarts), restarts), restarts));
      rounds[which].shuma.push(roundFigures(figures(await shumaTimeline(rt, program, restarts), restarts), restarts));
    }
  }
  const sides = (r: { bare: RoundFigures[]; shuma: RoundFigures[] }): Sides => ({ bare: medianRound(r.bare), shuma: medianRound(r.shuma) });
  return { firstInstruction: sides(rounds.firstInstruction), libcMain: sides(rounds.libcMain) };
}

/**
 * A shell's empty loop, in a session of its own (another program's work, in a scheduling
 * autogroup of its own): one of the two cores is busy while it runs. It looks for the bench
 * every 20,000 turns and ends without it: a bench killed mid-section (a timeout's SIGTERM, a
 * SIGKILL) runs no cleanup, and a loop of its own session would have burnt a core for good.
 * Under `timeout 300` too (the house rule for a load loop), killed with its group.
 */
const BUSY_WHILE_BENCH_LIVES = 'while kill -0 "$1" 2>/dev/null; do i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; done';

function startBusyLoop(): Promise<ChildProcess> {
  const child = spawn('timeout', ['300', '/bin/sh', '-c', BUSY_WHILE_BENCH_LIVES, 'busy-loop', String(process.pid)], { detached: true, stdio: 'ignore' });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => resolve(child));
  });
}

/** Quiet rounds, then the same beside a busy loop. */
async function measureQuietAndBusy(rt: Runtime, programs: StampingPrograms, restarts: number, what: string): Promise<{ quiet: Measured; busy: Measured }> {
  const quiet = await measureRounds(rt, programs, restarts);
  progress(`the same beside a busy loop (${what})`);
  const busyLoop = await startBusyLoop();
  try {
    return { quiet, busy: await measureRounds(rt, programs, restarts) };
  } finally {
    await stopBusyLoop(busyLoop);
  }
}

async function stopBusyLoop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // timeout and its shell lead and share a process group of their own (detached: a session).
  process.kill(-child.pid!, 'SIGKILL');
  await exited;
}

/** Which rows: after 20 restarts a program (as before s32), after STEADY_WARMUP_RESTARTS, or both. */
export interface RestartRows {
  first: boolean;
  steady: boolean;
}

export async function restartSection(rt: Runtime, restarts: number, which: RestartRows): Promise<Line[]> {
  const spawner = (await rt.health()).spawner;
  progress(`restart a failing program ${restarts} times (${spawner} spawner)`);
  const programs = compileStampingPrograms();
  let first: { quiet: Measured; busy: Measured } | undefined;
  let steady: { quiet: Measured; busy: Measured } | undefined;
  try {
    // Warm-up of both paths, not counted.
    for (const program of [programs.firstInstruction, programs.libcMain]) {
      await bareTimeline(program, 20);
      await shumaTimeline(rt, program, 20);
    }
    if (which.first) first = await measureQuietAndBusy(rt, programs, restarts, `${spawner} spawner`);
    if (which.steady) {
      // The JavaScript on either side is the same whichever program restarts: the fast one warms it.
      progress(`${STEADY_WARMUP_RESTARTS} restarts of warm-up a side, then the same again (${spawner} spawner)`);
      await bareTimeline(programs.firstInstruction, STEADY_WARMUP_RESTARTS);
      await shumaTimeline(rt, programs.firstInstruction, STEADY_WARMUP_RESTARTS);
      steady = await measureQuietAndBusy(rt, programs, restarts, `${spawner} spawner, steady`);
    }
  } finally {
    programs.remove();
  }
  const told = spawner === 'native' ? 'relaunch thread woken (epoll), or the loop\'s exit listener' : 'the loop\'s exit listener';
  const rows = (prefix: string, m: Measured, all: boolean): Line[] => {
    const { bare, shuma } = m.firstInstruction;
    const s29 = m.libcMain;
    return [
      { what: `${prefix}[row] exit told (${told}; bare: 'exit' callback) → next exec (\`_start\`), median`, unit: 'ms', shuma: shuma.toldMedian, baseline: bare.toldMedian },
      { what: `${prefix}[row] exit told → next exec, p95`, unit: 'ms', shuma: shuma.toldP95, baseline: bare.toldP95 },
      { what: `${prefix}[s29] program's last stamp → next run's first (static glibc, in main), median`, unit: 'ms', shuma: s29.shuma.programMedian, baseline: s29.bare.programMedian },
      { what: `${prefix}[s29] program's last stamp → next run's first, p95`, unit: 'ms', shuma: s29.shuma.programP95, baseline: s29.bare.programP95 },
      { what: `${prefix}[parent] exit reaped → resumed after the next exec, median`, unit: 'ms', shuma: shuma.hostMedian, baseline: bare.hostMedian },
      { what: `${prefix}[parent] exit reaped → resumed after the next exec, p95`, unit: 'ms', shuma: shuma.hostP95, baseline: bare.hostP95 },
      ...(all
        ? [
            { what: `${prefix}part: program's last act (\`exit_group\`) → exit told, median`, unit: 'ms', shuma: shuma.untoldMedian, baseline: bare.untoldMedian },
            { what: `${prefix}part: program's last act → next run's \`_start\`, median`, unit: 'ms', shuma: shuma.programMedian, baseline: bare.programMedian },
            { what: `${prefix}part: parent resumed after the exec → \`_start\`, median`, unit: 'ms', shuma: shuma.startMedian, baseline: bare.startMedian },
            { what: `${prefix}exit seen → next run running (actor's snapshots), median`, unit: 'ms', shuma: shuma.gapMedian, baseline: bare.gapMedian },
            { what: `${prefix}exit seen → next run running, p95`, unit: 'ms', shuma: shuma.gapP95, baseline: bare.gapP95 },
            { what: `${prefix}run started → next run started, median`, unit: 'ms', shuma: shuma.cycleMedian, baseline: bare.cycleMedian },
            { what: `${prefix}sustained restarts (${restarts} / total time)`, unit: 'restarts/s', shuma: shuma.perSecond, baseline: bare.perSecond },
          ]
        : []),
    ];
  };
  return [
    { heading: `(b) restart latency, ${spawner} spawner: a failing static program, restart {onFailure, backoffMs: 0, maxRestarts: ${restarts}}  vs  respawn on 'exit'; medians of ${ROUNDS} rounds` },
    ...(first ? [...rows('', first.quiet, true), ...rows('busy second core: ', first.busy, false)] : []),
    // The same once V8 has compiled what it will: a daemon's crash loop, past its first restarts.
    ...(steady ? [...rows(`after ${STEADY_WARMUP_RESTARTS} restarts: `, steady.quiet, !first), ...rows(`busy second core, after ${STEADY_WARMUP_RESTARTS} restarts: `, steady.busy, false)] : []),
  ];
}
