import type { SerializedError } from '../protocol/errors.js';
import type { HostRequestEvent, RelaunchOrder, Signal } from '../protocol/host-requests.js';
import type { ResolvedRestartPolicy } from '../protocol/specs.js';
import type { ResolvedProbe } from '../protocol/supervision-spec.js';
import type { MemberEvent, MemberPhase } from './group-events.js';

// What a command actor knows (its input and context) and the messages it builds from it, apart
// from what it does (command-setup.ts) and when (its chart, command-machine.ts).
export interface CommandInput {
  key: string;
  wsId: string;
  label: string;
  policy: ResolvedRestartPolicy;
  at: number;
  /** How to tell it is ready; null or absent: ready once spawned. */
  probe?: ResolvedProbe | null;
  /** It has dependencies: it waits for its workspace's word before its first spawn. */
  waits?: boolean;
  /** A command restarted by request after it ended starts a new actor that keeps counting. */
  restarts?: number;
  /** Its group has an intensity: after a failure it relaunches only once its group allows it. */
  judged?: boolean;
}

export interface CommandContext {
  key: string;
  wsId: string;
  label: string;
  policy: ResolvedRestartPolicy;
  probe: ResolvedProbe | null;
  waits: boolean;
  /** Runs spawned so far: after a group restart, the next is a relaunch, not a first start. */
  runs: number;
  /** Failed probes in a row of the current run, and what the last one said. */
  probeFailures: number;
  probeDetail: string | null;
  /**
   * Why its supervisor ends the current run: found unhealthy (liveness), not ready within
   * startTimeoutMs, or restarted by its group.
   */
  ending: 'unhealthy' | 'startTimeout' | 'group' | null;
  /** Epoch ms by which the current run must be ready; null: no limit (absent in older snapshots). */
  readyDeadline?: number | null;
  /** Its group has an intensity (absent in older snapshots: no). */
  judged?: boolean;
  /** It failed and waits for its group's word (GROUP_VERDICT, or a STOP past the intensity). */
  awaitingVerdict?: boolean;
  /** Why it waits, or why it never started: the dependency's story. */
  dependencyDetail: string | null;
  restarts: number;
  /** The delay the next relaunch will wait, before any reset for a stable run. */
  pendingBackoffMs: number;
  /** Absolute (epoch ms) time of the pending relaunch; null outside `backoff`. */
  backoffDeadline: number | null;
  /** Host clock time of the event that led into the current state; delays count from it. */
  stampedAt: number;
  runId: string | null;
  pid: number | null;
  runStartedAt: number | null;
  lastExit: { code: number | null; signal: string | null; status: number; reason?: 'unhealthy' | 'startTimeout' | 'group' | null } | null;
  spawnError: SerializedError | null;
  /** Why it was told to stop: its workspace's reason (and the quota breach, if that was it). */
  stopReason: string | null;
  stopDetail: string | null;
  /** A stop of this command alone (not of its workspace): it signals its own run. */
  stopAlone: { graceMs: number; deadline: number } | null;
}

/** Its supervisor ended the run for failing to serve: a failure whatever its exit status. */
export function endedAsFailure(context: CommandContext): boolean {
  return context.ending === 'unhealthy' || context.ending === 'startTimeout';
}

export function report(context: CommandContext, phase: MemberPhase, at: number): MemberEvent {
  return { type: 'MEMBER', key: context.key, phase, at };
}

export function signalRun(context: CommandContext, signal: Signal): HostRequestEvent {
  const reason = context.ending ?? 'stop';
  return { type: 'HOST_REQUEST', request: { type: 'signalRun', wsId: context.wsId, key: context.key, runId: context.runId ?? '', signal, reason } };
}

export function stopAloneSignal(context: CommandContext, graceMs: number): HostRequestEvent {
  const signal = graceMs === 0 ? 'SIGKILL' : 'SIGTERM';
  return { type: 'HOST_REQUEST', request: { type: 'signalRun', wsId: context.wsId, runId: context.runId ?? '', signal } };
}

/**
 * What this actor will decide when the run it asks for exits, said ahead so the host can act on
 * it without a round trip (host/main-actors/standing-orders.ts): only when the decision rests on
 * the exit status and the restart count alone — no backoff, no group to wait for (an intensity),
 * no probe (a run ended as unhealthy fails whatever its status). Anything else it may still do
 * (a stop, a group restart) signals the run first, which revokes the order.
 */
export function standingOrder(context: CommandContext): RelaunchOrder | null {
  const { policy } = context;
  if (!policy.onFailure && policy.always !== true) return null;
  if (policy.backoffMs !== 0 || context.pendingBackoffMs !== 0 || context.judged === true || context.probe) return null;
  return { always: policy.always === true, maxRestarts: policy.maxRestarts };
}
