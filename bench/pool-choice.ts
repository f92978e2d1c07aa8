// Why the actor threads are piscina's: the same actor-host task run by piscina (one
// long-lived task per thread) and by a plain `new Worker`, side by side. What is measured
// is what the runtime pays: time until every thread answers, and a protocol round trip.
import { MessageChannel, Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { wrap, releaseProxy, type Remote } from 'comlink';
import type { ActorWorkerTask, WorkerAdmin } from '../src/protocol/worker-task.js';
import { BatchedChannel } from '../src/protocol/channel.js';
import { comlinkEndpoint } from '../src/protocol/comlink-endpoint.js';
import type { FromWorker, ToWorker } from '../src/protocol/worker-messages.js';
import { now, progress, quantile, type Line } from './measure.js';

const THREADS = 2;
const ROUND_TRIPS = 2_000;
const TRIALS = 5;

interface HostedThread {
  channel: BatchedChannel<ToWorker, FromWorker>;
  admin: Remote<WorkerAdmin>;
  acks: Map<number, () => void>;
}

const actorWorkerUrl = new URL('../src/actors/actor-worker.js', import.meta.url);

function taskFor(index: number, acks: Map<number, () => void>) {
  const data = new MessageChannel();
  const admin = new MessageChannel();
  const task: ActorWorkerTask = { port: data.port2, admin: admin.port2, workerIndex: index, manualClockStart: 0, posted: new Int32Array(new SharedArrayBuffer(4)), logThreshold: new Int32Array(new SharedArrayBuffer(4)) };
  const channel = new BatchedChannel<ToWorker, FromWorker>(data.port1, (message) => {
    if (message.type === 'clockAck') acks.get(message.seq)?.();
  });
  const thread: HostedThread = { channel, admin: wrap<WorkerAdmin>(comlinkEndpoint(admin.port1)), acks };
  return { task, transfer: [data.port2, admin.port2], thread };
}

async function roundTripsUs(thread: HostedThread): Promise<number> {
  const samples: number[] = [];
  for (let seq = 1; seq <= ROUND_TRIPS; seq++) {
    const start = now();
    await new Promise<void>((resolve) => {
      thread.acks.set(seq, resolve);
      // A clock move is answered by the actor host itself: a real protocol round trip.
      thread.channel.send({ type: 'clock', now: seq, seq });
    });
    samples.push((now() - start) * 1000);
  }
  return quantile(samples, 0.5);
}

async function withPiscina(): Promise<{ readyMs: number; roundTripUs: number }> {
  const start = now();
  const pool = new Piscina({
    filename: actorWorkerUrl.href,
    minThreads: THREADS,
    maxThreads: THREADS,
    concurrentTasksPerWorker: 1,
    atomics: 'disabled',
    idleTimeout: Number.POSITIVE_INFINITY,
  });
  const threads = Array.from({ length: THREADS }, (_, index) => {
    const { task, transfer, thread } = taskFor(index, new Map());
    return { thread, run: pool.run(task, { transferList: transfer as never }) };
  });
  await Promise.all(threads.map(({ thread }) => thread.admin.stats()));
  const readyMs = now() - start;
  const roundTripUs = await roundTripsUs(threads[0]!.thread);
  for (const { thread, run } of threads) {
    await thread.admin.shutdown();
    await run;
    thread.admin[releaseProxy]();
    thread.channel.close();
  }
  await pool.destroy();
  return { readyMs, roundTripUs };
}

async function withPlainWorkers(): Promise<{ readyMs: number; roundTripUs: number }> {
  const start = now();
  const threads = Array.from({ length: THREADS }, (_, index) => {
    const { task, transfer, thread } = taskFor(index, new Map());
    const worker = new Worker(
      `import(${JSON.stringify(actorWorkerUrl.href)}).then((m) => m.default(require('node:worker_threads').workerData))`,
      { eval: true, workerData: task, transferList: transfer as never },
    );
    return { thread, worker };
  });
  await Promise.all(threads.map(({ thread }) => thread.admin.stats()));
  const readyMs = now() - start;
  const roundTripUs = await roundTripsUs(threads[0]!.thread);
  for (const { thread, worker } of threads) {
    await thread.admin.shutdown();
    thread.admin[releaseProxy]();
    thread.channel.close();
    await worker.terminate();
  }
  return { readyMs, roundTripUs };
}

export async function poolChoiceSection(): Promise<Line[]> {
  progress('pool choice: piscina vs plain workers');
  const piscina: Array<{ readyMs: number; roundTripUs: number }> = [];
  const plain: Array<{ readyMs: number; roundTripUs: number }> = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    piscina.push(await withPiscina());
    plain.push(await withPlainWorkers());
  }
  const median = (list: typeof piscina, key: 'readyMs' | 'roundTripUs') => quantile(list.map((x) => x[key]), 0.5);
  return [
    { heading: `(e) actor threads: piscina (shuma) vs plain worker_threads (baseline), ${THREADS} threads` },
    { what: 'time until every thread serves', unit: 'ms', shuma: median(piscina, 'readyMs'), baseline: median(plain, 'readyMs') },
    {
      what: 'protocol round trip, median',
      unit: 'µs',
      shuma: median(piscina, 'roundTripUs'),
      baseline: median(plain, 'roundTripUs'),
    },
  ];
}
