import type { MessagePort } from 'node:worker_threads';

// The contract between the main thread's pool and a worker thread: what a worker is handed
// when it starts, and the request/response calls (comlink) the main thread makes to it.

/** What a worker receives as its task: its end of the message channel and of the admin channel. */
export interface ActorWorkerTask {
  port: MessagePort;
  admin: MessagePort;
  workerIndex: number;
  /** Set when the runtime runs on a manual clock: the simulated clock starts here. */
  manualClockStart: number | null;
  /**
   * One Int32 on a SharedArrayBuffer: the worker counts every batch it sends and wakes whoever
   * waits on it (the main thread reading an actor's state synchronously: WorkerPool.receiveNow).
   */
  posted: Int32Array;
  /**
   * One Int32 on a SharedArrayBuffer: the host logger's level as a number (pino's: 30 info,
   * 40 warn…), kept current by the host. An actor's log request below it is not sent at all.
   */
  logThreshold: Int32Array;
}

/** Request/response calls the host makes to a worker, over comlink. */
export interface WorkerAdmin {
  stats(): { workerIndex: number; actors: number; heapUsed: number };
  /** Ends the task: the thread goes back to the pool. */
  shutdown(): void;
}
