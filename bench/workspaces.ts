// (d) 10,000 idle workspaces: how long they take to create and what each one costs in heap
// (main thread and worker threads), against bare XState actors in this very process.
import { Worker } from 'node:worker_threads';
import { createActor, createMachine, type AnyActor } from 'xstate';
import { createRuntime, type Runtime, type Workspace } from '../src/index.js';
import { coreOf } from '../src/host/runtime.js';
import { workspaceMachine } from '../src/machines/workspace-machine.js';
import { now, progress, settledHeap, type Line } from './measure.js';

interface Cost {
  /** Creation time per item, µs. */
  createUs: number;
  /** Heap per item, bytes, after a full collection. */
  heapBytes: number;
  /** Time to stop them all, ms. */
  stopMs: number;
}

const tinyMachine = createMachine({
  id: 'tiny',
  initial: 'idle',
  states: { idle: { on: { GO: 'done' } }, done: { type: 'final' } },
});

/** Creates `count` actors with `make`, keeps them all alive, and measures time and heap. */
function actorCost(count: number, make: (index: number) => AnyActor): Cost {
  const heapBefore = settledHeap();
  const actors: AnyActor[] = [];
  const start = now();
  for (let i = 0; i < count; i++) actors.push(make(i));
  const createUs = ((now() - start) * 1000) / count;
  const heapBytes = (settledHeap() - heapBefore) / count;
  const stopStart = now();
  for (const actor of actors) actor.stop();
  return { createUs, heapBytes, stopMs: now() - stopStart };
}

function tinyActor(): AnyActor {
  return createActor(tinyMachine).start();
}

/** What a worker does for each workspace, minus the protocol: the same machine, started. */
function bareWorkspaceActor(index: number): AnyActor {
  const id = `ws-${index}`;
  const actor = createActor(workspaceMachine, { id, input: { id, label: `idle-${index}`, ttlMs: null } });
  // As in the worker: an actor error nobody observes would be thrown.
  actor.subscribe({ error: () => undefined });
  actor.start();
  actor.send({ type: 'START', at: Date.now() });
  return actor;
}

/**
 * A worker's heap after a full collection. There is no way to ask a pool thread to collect,
 * but V8 collects all garbage before it writes a heap snapshot: take one and throw it away.
 */
async function settledWorkerHeap(rt: Runtime): Promise<number> {
  for (const thread of coreOf(rt).workerThreads) {
    if (!(thread instanceof Worker)) continue;
    const snapshot = await thread.getHeapSnapshot();
    for await (const chunk of snapshot) void chunk; // read to the end, thrown away
  }
  const stats = await coreOf(rt).workerStats();
  return stats.reduce((sum, worker) => sum + worker.heapUsed, 0);
}

const cpuUs = (usage: NodeJS.CpuUsage) => usage.user + usage.system;

interface Timed {
  createUs: number;
  /** CPU of every thread of the process (main, actor threads, V8's compiler and collector threads) per workspace created, µs. */
  createCpuUs: number;
  shutdownMs: number;
  /** CPU of every thread while the runtime shut down, ms. */
  shutdownCpuMs: number;
}

interface ShumaCost {
  /** Threads that had made and stopped only the first batch: V8 still compiling the path. */
  fresh: Timed;
  /** Threads that had made and stopped `WARM_THREADS` workspaces: the path compiled, as in a runtime that has been up a while. */
  warm: Timed;
  mainHeapBytes: number;
  workerHeapBytes: number;
  actors: number;
}

/**
 * Workspaces made and stopped before the warm reading. V8 compiles a path once it is hot, in
 * every thread of its own (main and each actor thread): on threads that had made only one batch,
 * a third of the CPU of the 10,000 creates and of their shutdown was TurboFan compiling (perf),
 * a cost a runtime pays once, not per workspace; and what a create leaves cold, its shutdown
 * pays (a create that takes fewer XState steps moved their compiling to the shutdown).
 */
const WARM_THREADS = 2_000;

/** `count` workspaces made `batch` at a time, held as a user holds the handles of those they made. */
async function createMany(rt: Runtime, count: number, batch: number, prefix = 'idle'): Promise<Workspace[]> {
  const workspaces: Workspace[] = [];
  for (let created = 0; created < count; created += batch) {
    const next = Array.from({ length: Math.min(batch, count - created) }, (_, i) =>
      rt.createWorkspace({ label: `${prefix}-${created + i}` }),
    );
    workspaces.push(...(await Promise.all(next)));
  }
  return workspaces;
}

/** A fresh runtime whose threads made and stopped `warmUp` workspaces first (what it made is stopped). */
async function warmRuntime(warmUp: number, batch: number): Promise<Runtime> {
  const rt = await createRuntime();
  for (let done = 0; done < warmUp; done += batch * 10) {
    const warm = await createMany(rt, Math.min(batch * 10, warmUp - done), batch, 'warm');
    await Promise.all(warm.map((ws) => ws.stop({ graceMs: 0 })));
  }
  return rt;
}

/** Creates `count` workspaces, then shuts the runtime down; both timed. */
async function timedRun(warmUp: number, count: number, batch: number): Promise<Timed> {
  const rt = await warmRuntime(warmUp, batch);
  try {
    const cpuStart = process.cpuUsage();
    const start = now();
    const workspaces = await createMany(rt, count, batch);
    const createUs = ((now() - start) * 1000) / count;
    const createCpuUs = cpuUs(process.cpuUsage(cpuStart)) / count;
    progress(`${workspaces.length} workspaces created; shutting the runtime down`);
    const cpuStop = process.cpuUsage();
    const stopStart = now();
    await rt.shutdown({ graceMs: 0 });
    return { createUs, createCpuUs, shutdownMs: now() - stopStart, shutdownCpuMs: cpuUs(process.cpuUsage(cpuStop)) / 1000 };
  } finally {
    await rt.shutdown({ graceMs: 0 }); // at once if it is already down; whatever failed above
  }
}

/**
 * Times and heap are read on runtimes of their own. A worker's heap can only be read settled
 * through a heap snapshot, and once V8 has written one it tracks every object the collector
 * moves for the rest of the thread's life: a shutdown timed after it cost ~0.7 s more CPU
 * (1.9-2.1 s against 1.2-1.3 s, same machine, same minutes), a cost no user's runtime pays.
 */
async function shumaCost(count: number, batch: number): Promise<ShumaCost> {
  const fresh = await timedRun(batch, count, batch);
  progress(`${count} more on threads that made and stopped ${WARM_THREADS} first`);
  const warm = await timedRun(WARM_THREADS, count, batch);
  progress(`${count} more on a third runtime, for their heap`);
  const rt = await warmRuntime(batch, batch);
  try {
    const workerBefore = await settledWorkerHeap(rt);
    const mainBefore = settledHeap();
    const workspaces = await createMany(rt, count, batch);
    const mainHeapBytes = (settledHeap() - mainBefore) / count;
    const workerHeapBytes = ((await settledWorkerHeap(rt)) - workerBefore) / count;
    const actors = (await coreOf(rt).workerStats()).reduce((sum, worker) => sum + worker.actors, 0);
    if (workspaces.length !== count) throw new Error(`${workspaces.length} workspaces made, ${count} asked`);
    return { fresh, warm, mainHeapBytes, workerHeapBytes, actors };
  } finally {
    await rt.shutdown({ graceMs: 0 });
  }
}

export async function workspacesSection(count: number, batch: number): Promise<Line[]> {
  progress(`${count} bare actors (baselines)`);
  actorCost(1000, tinyActor); // warm-up
  const tiny = actorCost(count, tinyActor);
  actorCost(1000, bareWorkspaceActor);
  const bareWs = actorCost(count, bareWorkspaceActor);
  progress(`${count} idle workspaces, ${batch} at a time`);
  const shuma = await shumaCost(count, batch);
  const shumaHeap = shuma.mainHeapBytes + shuma.workerHeapBytes;
  const kib = (bytes: number) => bytes / 1024;
  return [
    { heading: `(d) ${count.toLocaleString("en-US")} idle workspaces (rt.createWorkspace, ${batch} at a time)  vs  bare XState actors in one thread` },
    { what: 'create, per workspace  vs  tiny actor', unit: 'µs', shuma: shuma.fresh.createUs, baseline: tiny.createUs },
    { what: 'create, per workspace  vs  bare workspace-machine actor', unit: 'µs', shuma: shuma.fresh.createUs, baseline: bareWs.createUs },
    { what: '  CPU per workspace created, all threads (main, actor threads, V8 compiler and collector)', unit: 'µs', shuma: shuma.fresh.createCpuUs, baseline: Number.NaN },
    { what: `  the same on threads warm (${WARM_THREADS.toLocaleString('en-US')} made and stopped first)  vs  bare workspace-machine actor`, unit: 'µs', shuma: shuma.warm.createUs, baseline: bareWs.createUs },
    { what: '    CPU per workspace created, all threads', unit: 'µs', shuma: shuma.warm.createCpuUs, baseline: Number.NaN },
    { what: 'heap per workspace, main + workers  vs  tiny actor', unit: 'KiB', shuma: kib(shumaHeap), baseline: kib(tiny.heapBytes) },
    { what: 'heap per workspace, main + workers  vs  bare workspace-machine actor', unit: 'KiB', shuma: kib(shumaHeap), baseline: kib(bareWs.heapBytes) },
    { what: '  of which main thread (registry entry, handle, snapshot mirror)', unit: 'KiB', shuma: kib(shuma.mainHeapBytes), baseline: Number.NaN },
    { what: '  of which worker threads (actor + its subscriptions)', unit: 'KiB', shuma: kib(shuma.workerHeapBytes), baseline: kib(bareWs.heapBytes) },
    { what: `actors alive in the workers (expect ${count})`, unit: 'actors', shuma: shuma.actors, baseline: Number.NaN },
    { what: `stop all: rt.shutdown({graceMs: 0})  vs  actor.stop() of each bare workspace actor`, unit: 'ms', shuma: shuma.fresh.shutdownMs, baseline: bareWs.stopMs },
    { what: '  CPU of the shutdown, all threads', unit: 'ms', shuma: shuma.fresh.shutdownCpuMs, baseline: Number.NaN },
    { what: `  the same on threads warm  vs  actor.stop() of each bare workspace actor`, unit: 'ms', shuma: shuma.warm.shutdownMs, baseline: bareWs.stopMs },
    { what: '    CPU of the shutdown, all threads', unit: 'ms', shuma: shuma.warm.shutdownCpuMs, baseline: Number.NaN },
  ];
}
