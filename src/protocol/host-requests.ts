// What the machines ask of the host: emitted by the machines, relayed by the worker to the
// main thread, which spawns, signals and probes for them.

import type { QuotaResource } from './stats.js';

export type Signal = 'SIGTERM' | 'SIGKILL' | 'SIGINT' | 'SIGHUP' | 'SIGQUIT' | 'SIGUSR1' | 'SIGUSR2';

/**
 * A command actor's standing order for the run it asks for: if that run exits (failing, or at
 * all with `always`) while `restarts` < `maxRestarts` (0: no bound), the host starts the next
 * run at once, before the actor has heard the exit; it tells the actor of it when the actor
 * asks (as it will), and kills it if the actor decides otherwise. Only with no backoff.
 */
export interface RelaunchOrder { always: boolean; maxRestarts: number }
export interface SpawnRequest { type: 'spawn'; wsId: string; key: string; restarts: number; relaunch?: RelaunchOrder }
export interface SignalRequest {
  type: 'signal';
  wsId: string;
  signal: Signal;
  /**
   * SIGTERM in waves of command keys, dependants first: each wave once the one before has ended
   * (what no wave names goes with the first). A later SIGKILL ends every wave at once.
   */
  waves?: string[][];
}
export interface SpawnPipelineRequest {
  type: 'spawnPipeline';
  wsId: string;
  pipelineId: string;
  attempt: number;
  /** Only these nodes (rest_for_one), spliced in beside those that run on; absent: all of them. */
  nodes?: string[];
}
/** A node that ended and is not restarted: the runtime lets go of its stdin, its writer sees the end. */
export interface ReleasePipelineInputRequest { type: 'releasePipelineInput'; wsId: string; pipelineId: string; label: string }
/** Signals the processes of one pipeline only; the reaper reports PIPELINE_EMPTY when none is left. */
export interface SignalPipelineRequest { type: 'signalPipeline'; wsId: string; pipelineId: string; signal: Signal }
/** Run the command's readiness probe once against this run; the answer is PROBE_RESULT. */
export interface ProbeRequest { type: 'probe'; wsId: string; key: string; runId: string }
/** Signals one run's process group: a command stopped alone (its workspace going on), a liveness
 * failure, or a restart its group decided. */
export interface SignalRunRequest {
  type: 'signalRun';
  wsId: string;
  runId: string;
  signal: Signal;
  /** The command's key, when its supervisor ends the run. */
  key?: string;
  /** unhealthy: its liveness probe failed; group: its group restarts it; stop: stopped. */
  reason?: 'unhealthy' | 'startTimeout' | 'group' | 'stop';
}
export interface LogRequest {
  type: 'log';
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields: Record<string, string | number | boolean | null>;
  /** A quota breach's warning: once logged, the host stops keeping the breach to tell again (host/core/orders-in-flight.ts). */
  breach?: { wsId: string; resource: QuotaResource };
}
export type HostRequest =
  | SpawnRequest
  | SignalRequest
  | SpawnPipelineRequest
  | SignalPipelineRequest
  | ReleasePipelineInputRequest
  | ProbeRequest
  | SignalRunRequest
  | LogRequest;

/** A child's request on its way to the host: sent to its parent, the workspace actor, which emits it. */
export interface HostRequestEvent { type: 'HOST_REQUEST'; request: HostRequest }
