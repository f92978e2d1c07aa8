// The piscina task that turns a pool thread into an actor host. It runs for the life of the
// runtime: it returns only when the host asks it to stop through the admin channel.
import { expose } from 'comlink';
import type { MessagePort } from 'node:worker_threads';
import { SimulatedClock } from 'xstate';
import { BatchedChannel } from '../protocol/channel.js';
import { comlinkEndpoint } from '../protocol/comlink-endpoint.js';
import type { FromWorker, ToWorker } from '../protocol/messages.js';
import { ActorHost } from './actor-host.js';

export interface ActorWorkerTask {
  port: MessagePort;
  admin: MessagePort;
  workerIndex: number;
  /** Set when the runtime runs on a manual clock: the simulated clock starts here. */
  manualClockStart: number | null;
}

/** Request/response calls the host makes to a worker, over comlink. */
export interface WorkerAdmin {
  stats(): { workerIndex: number; actors: number; heapUsed: number };
  /** Ends the task: the thread goes back to the pool. */
  shutdown(): void;
}

export default function hostActors(task: ActorWorkerTask): Promise<{ workerIndex: number }> {
  let clock: SimulatedClock | undefined;
  if (task.manualClockStart !== null) {
    clock = new SimulatedClock();
    clock.set(task.manualClockStart);
  }
  const now = clock ? () => clock.now() : () => Date.now();
  const channel: BatchedChannel<FromWorker, ToWorker> = new BatchedChannel(task.port, (message) =>
    host.receive(message),
  );
  const host = new ActorHost(
    (message) => channel.send(message),
    clock,
    now,
    () => channel.requestFlush(),
  );
  channel.beforeFlush = () => host.sendPersisted();

  return new Promise((resolve) => {
    const admin: WorkerAdmin = {
      stats: () => ({ workerIndex: task.workerIndex, actors: host.size, heapUsed: process.memoryUsage().heapUsed }),
      shutdown: () => {
        channel.close();
        task.port.close();
        // Let comlink's reply leave before the admin port closes.
        setImmediate(() => task.admin.close());
        resolve({ workerIndex: task.workerIndex });
      },
    };
    expose(admin, comlinkEndpoint(task.admin));
  });
}
