// The piscina task that turns a pool thread into an actor host. It runs for the life of the
// runtime: it returns only when the host asks it to stop through the admin channel.
import { expose } from 'comlink';
import { SimulatedClock } from 'xstate';
import { BatchedChannel } from '../protocol/channel.js';
import { comlinkEndpoint } from '../protocol/comlink-endpoint.js';
import type { FromWorker, ToWorker } from '../protocol/worker-messages.js';
import type { ActorWorkerTask, WorkerAdmin } from '../protocol/worker-task.js';
import { WorkerActors } from './worker-actors.js';

export default function hostActors(task: ActorWorkerTask): Promise<{ workerIndex: number }> {
  let clock: SimulatedClock | undefined;
  if (task.manualClockStart !== null) {
    clock = new SimulatedClock();
    clock.set(task.manualClockStart);
  }
  const now = clock ? () => clock.now() : () => Date.now();
  const channel: BatchedChannel<FromWorker, ToWorker> = new BatchedChannel(
    task.port,
    (message) => host.receive(message),
    (error, message) => host.receiveFailed(error, message),
  );
  const host = new WorkerActors(
    (message) => channel.send(message),
    clock,
    now,
    () => channel.requestFlush(),
    (level) => level >= Atomics.load(task.logThreshold, 0),
  );
  channel.beforeFlush = () => host.sendPersisted();
  channel.afterPost = () => {
    Atomics.add(task.posted, 0, 1);
    Atomics.notify(task.posted, 0);
  };

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
