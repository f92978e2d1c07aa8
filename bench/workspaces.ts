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

interface ShumaCost {
  createUs: number;
  /** CPU of every thread of the process (main, actor threads, the collector's) per workspace created, µs. */
  createCpuUs: number;
  /** CPU of every thread while the runtime shut down, ms. */
  shutdownCpuMs: number;
  mainHeapBytes: number;
  workerHeapBytes: number;
  shutdownMs: number;
  actors: number;
}

/** `count` workspaces made `batch` at a time, held as a user holds the handles of those they made. */
async function createMany(rt: Runtime, count: number, batch: number): Promise<Workspace[]> {
  const workspaces: Workspace[] = [];
  for (let created = 0; created < count; created += batch) {
    const next = Array.from({ length: Math.min(batch, count - created) }, (_, i) =>
      rt.createWorkspace({ label: `idle-${created + i}` }),
    );
    workspaces.push(...(await Promise.all(next)));
  }
  return workspaces;
}

/** A fresh runtime, its path warmed up (and what the warm-up made stopped) before the first reading. */
async function warmRuntime(batch: number): Promise<Runtime> {
  const rt = await createRuntime();
  const warm = await Promise.all(Array.from({ length: batch }, (_, i) => rt.createWorkspace({ label: `warm-${i}` })));
  await Promise.all(warm.map((ws) => ws.stop({ graceMs: 0 })));
  return rt;
}

/**
 * Times and heap are read on two runtimes. A worker's heap can only be read settled through a
 * heap snapshot, and once V8 has written one it tracks every object the collector moves for the
 * rest of the thread's life: a shutdown timed after it cost ~0.7 s more CPU (1.9-2.1 s against
 * 1.2-1.3 s, same machine, same minutes), a cost no user's runtime ever pays.
 */
async function shumaCost(count: number, batch: number): Promise<ShumaCost> {
  const timed = await warmRuntime(batch);
  let createUs: number;
  let createCpuUs: number;
  let shutdownMs: number;
  let shutdownCpuMs: number;
  try {
    const cpuStart = process.cpuUsage();
    const start = now();
    const workspaces = await createMany(timed, count, batch);
    createUs = ((now() - start) * 1000) / count;
    createCpuUs = cpuUs(process.cpuUsage(cpuStart)) / count;
    progress(`${workspaces.length} workspaces created; shutting the runtime down`);
    const cpuStop = process.cpuUsage();
    const stopStart = now();
    await timed.shutdown({ graceMs: 0 });
    shutdownMs = now() - stopStart;
    shutdownCpuMs = cpuUs(process.cpuUsage(cpuStop)) / 1000;
  } finally {
    await timed.shutdown({ graceMs: 0 }); // at once if it is already down; whatever failed above
  }
  progress(`${count} more on a second runtime, for their heap`);
  const rt = await warmRuntime(batch);
  try {
    const workerBefore = await settledWorkerHeap(rt);
    const mainBefore = settledHeap();
    const workspaces = await createMany(rt, count, batch);
    const mainHeapBytes = (settledHeap() - mainBefore) / count;
    const workerHeapBytes = ((await settledWorkerHeap(rt)) - workerBefore) / count;
    const actors = (await coreOf(rt).workerStats()).reduce((sum, worker) => sum + worker.actors, 0);
    if (workspaces.length !== count) throw new Error(`${workspaces.length} workspaces made, ${count} asked`);
    return { createUs, createCpuUs, mainHeapBytes, workerHeapBytes, shutdownMs, shutdownCpuMs, actors };
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
    { what: 'create, per workspace  vs  tiny actor', unit: 'µs', shuma: shuma.createUs, baseline: tiny.createUs },
    { what: 'create, per workspace  vs  bare workspace-machine actor', unit: 'µs', shuma: shuma.createUs, baseline: bareWs.createUs },
    { what: '  CPU per workspace created, all threads (main, actor threads, collector)', unit: 'µs', shuma: shuma.createCpuUs, baseline: Number.NaN },
    { what: 'heap per workspace, main + workers  vs  tiny actor', unit: 'KiB', shuma: kib(shumaHeap), baseline: kib(tiny.heapBytes) },
    { what: 'heap per workspace, main + workers  vs  bare workspace-machine actor', unit: 'KiB', shuma: kib(shumaHeap), baseline: kib(bareWs.heapBytes) },
    { what: '  of which main thread (registry entry, handle, snapshot mirror)', unit: 'KiB', shuma: kib(shuma.mainHeapBytes), baseline: Number.NaN },
    { what: '  of which worker threads (actor + its subscriptions)', unit: 'KiB', shuma: kib(shuma.workerHeapBytes), baseline: kib(bareWs.heapBytes) },
    { what: `actors alive in the workers (expect ${count})`, unit: 'actors', shuma: shuma.actors, baseline: Number.NaN },
    { what: `stop all: rt.shutdown({graceMs: 0})  vs  actor.stop() of each bare workspace actor`, unit: 'ms', shuma: shuma.shutdownMs, baseline: bareWs.stopMs },
    { what: '  CPU of the shutdown, all threads', unit: 'ms', shuma: shuma.shutdownCpuMs, baseline: Number.NaN },
  ];
}
