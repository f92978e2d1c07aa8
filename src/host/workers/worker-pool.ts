import { wrap, releaseProxy, type Remote } from 'comlink';
import type { Logger } from 'pino';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { BatchedChannel } from '../../protocol/channel.js';
import { comlinkEndpoint } from '../../protocol/comlink-endpoint.js';
import type { FromWorker, ToWorker } from '../../protocol/worker-messages.js';
import type { ActorWorkerTask, WorkerAdmin } from '../../protocol/worker-task.js';

interface PoolMember {
  index: number;
  channel: BatchedChannel<ToWorker, FromWorker>;
  admin: Remote<WorkerAdmin>;
  adminPort: MessagePort;
  /** Batches the thread has sent (it counts them and wakes a waiter): see receiveNow. */
  posted: Int32Array;
  task: Promise<unknown>;
  load: number;
}

export interface WorkerPoolOptions {
  size: number;
  manualClockStart: number | null;
  onMessage: (workerIndex: number, message: FromWorker) => void;
  onWorkerLost: (workerIndex: number, error: unknown) => void;
  /** The host's logger: the threads send no log request it would drop (see logThreshold). */
  logger?: Logger;
}

/** pino's levelVal is Infinity when silent; an Int32 holds less. */
const SILENT = 2 ** 31 - 1;

/**
 * The threads that host the machine actors. piscina owns the threads (creation, limits,
 * replacement of a dead one); each thread runs one long-lived task, `hostActors`, and
 * talks to us over its own batched msgpack channel, plus a comlink channel for admin calls.
 */
export class WorkerPool {
  private readonly piscina: Piscina;
  private readonly members: PoolMember[] = [];
  private closing = false;
  private readonly logThreshold = new Int32Array(new SharedArrayBuffer(4));

  constructor(private readonly options: WorkerPoolOptions) {
    const logger = options.logger;
    if (logger) {
      const follow = () => Atomics.store(this.logThreshold, 0, Math.min(logger.levelVal, SILENT));
      follow();
      logger.on('level-change', follow);
    }
    this.piscina = new Piscina({
      filename: new URL('../../actors/actor-worker.js', import.meta.url).href,
      minThreads: options.size,
      maxThreads: options.size,
      concurrentTasksPerWorker: 1,
      // Long-lived tasks need it: with Atomics an idle thread blocks and freezes our listeners.
      atomics: 'disabled',
      idleTimeout: Number.POSITIVE_INFINITY,
      maxQueue: 0,
    });
    // A thread that cannot even load (a broken install) is reported, not an unhandled 'error'.
    this.piscina.on('error', (error: unknown) => {
      if (!this.closing) this.options.onWorkerLost(-1, error);
    });
    for (let index = 0; index < options.size; index++) this.members.push(this.startMember(index));
  }

  /** Resolves once every thread serves; rejects if one dies first. */
  async ready(): Promise<void> {
    await Promise.all(
      this.members.map((member) =>
        Promise.race([
          member.admin.stats(),
          member.task.then(() => {
            throw new Error(`actor thread ${member.index} ended before it served`);
          }),
        ]),
      ),
    );
  }

  private startMember(index: number): PoolMember {
    const data = new MessageChannel();
    const admin = new MessageChannel();
    const channel = new BatchedChannel<ToWorker, FromWorker>(data.port1, (message) =>
      this.options.onMessage(index, message),
    );
    const posted = new Int32Array(new SharedArrayBuffer(4));
    const task: ActorWorkerTask = {
      port: data.port2,
      admin: admin.port2,
      workerIndex: index,
      manualClockStart: this.options.manualClockStart,
      posted,
      logThreshold: this.logThreshold,
    };
    const run = this.piscina.run(task, { transferList: [data.port2, admin.port2] });
    run.catch((error: unknown) => {
      if (!this.closing) this.options.onWorkerLost(index, error);
    });
    return { index, channel, admin: wrap<WorkerAdmin>(comlinkEndpoint(admin.port1)), adminPort: admin.port1, posted, task: run, load: 0 };
  }

  get size(): number {
    return this.members.length;
  }

  /** The thread with the fewest actors placed on it; the caller counts the placement. */
  place(): number {
    let best = this.members[0]!;
    for (const member of this.members) if (member.load < best.load) best = member;
    best.load++;
    return best.index;
  }

  unplace(index: number): void {
    const member = this.members[index];
    if (member && member.load > 0) member.load--;
  }

  send(index: number, message: ToWorker): void {
    this.members[index]?.channel.send(message);
  }

  /**
   * Reads what thread `index` has sent, synchronously, until `done()` holds; false only when
   * `timeoutMs` ran out first. Our own queued messages leave first, then the thread's answers
   * are taken off the port as they come, the wait between them a futex sleep (Atomics.wait),
   * not a spin. For a synchronous read of an actor's state that must include what the host has
   * told it. Called while a batch of that thread is being handled (an observer reading), it
   * cannot overtake the batch's rest: it returns at once.
   */
  receiveNow(index: number, done: () => boolean, timeoutMs: number): boolean {
    const member = this.members[index];
    if (!member || this.closing) return true;
    member.channel.flush();
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const seen = Atomics.load(member.posted, 0);
      if (!member.channel.drainNow()) return true;
      if (done()) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      Atomics.wait(member.posted, 0, seen, left);
    }
  }

  broadcast(message: ToWorker): void {
    for (const member of this.members) member.channel.send(message);
  }

  /**
   * A thread died: its task is started again (piscina brings up a new thread for it), with a
   * fresh channel. Its actors are gone; the caller hosts them again from their snapshots.
   */
  restartMember(index: number): void {
    const old = this.members[index];
    if (!old || this.closing) return;
    old.channel.close();
    old.admin[releaseProxy]();
    old.adminPort.close();
    const member = this.startMember(index);
    member.load = old.load;
    this.members[index] = member;
  }

  async stats(): Promise<Array<{ workerIndex: number; actors: number; heapUsed: number }>> {
    return Promise.all(this.members.map((member) => member.admin.stats()));
  }

  /** Test hook: the pool's threads, e.g. to terminate one from the outside. */
  get threads(): ReadonlyArray<unknown> {
    return this.piscina.threads;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const member of this.members) member.channel.flush();
    await Promise.allSettled(
      this.members.map(async (member) => {
        // A dead thread never answers: its task's end is answer enough.
        const ended = member.task.then(
          () => undefined,
          () => undefined,
        );
        await Promise.race([member.admin.shutdown(), ended]);
        await ended;
      }),
    );
    for (const member of this.members) {
      member.admin[releaseProxy]();
      member.adminPort.close();
      member.channel.close();
    }
    await this.piscina.destroy();
  }
}
