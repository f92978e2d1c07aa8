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

/** What a command actor is given as it starts, never changed after. */
export interface CommandGiven {
  key: string;
  wsId: string;
  label: string;
  policy: ResolvedRestartPolicy;
  probe: ResolvedProbe | null;
  waits: boolean;
  /** Its group has an intensity (absent in older snapshots: no). */
  judged?: boolean;
}

/** What it is told once in a while (a stop, a dependency's story): set once or twice in its life. */
export interface CommandTold {
  /** Why it waits, or why it never started: the dependency's story. */
  dependencyDetail: string | null;
  /** Why it was told to stop: its workspace's reason (and the quota breach, if that was it). */
  stopReason: string | null;
  stopDetail: string | null;
  /** A stop of this command alone (not of its workspace): it signals its own run. */
  stopAlone: { graceMs: number; deadline: number } | null;
}

/**
 * XState copies the context at every update (`Object.assign({}, context, update)`): past ~19
 * top-level fields V8 gives the copy a dictionary (6-15 us an update, measured, against well under
 * one). What rarely or never changes is held in two nested records (`given`, `told`), the fields
 * of every run flat; observers and the snapshot file see one flat record (`flatCommandContext`).
 */
export interface CommandContext {
  given: CommandGiven;
  told: CommandTold;
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
  /** It failed and waits for its group's word (GROUP_VERDICT, or a STOP past the intensity). */
  awaitingVerdict?: boolean;
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
}

/** A new command's context: nothing run yet, nothing told. */
export function initialCommandContext(input: CommandInput): CommandContext {
  return {
    given: {
      key: input.key,
      wsId: input.wsId,
      label: input.label,
      policy: input.policy,
      probe: input.probe ?? null,
      waits: input.waits ?? false,
      judged: input.judged ?? false,
    },
    told: { dependencyDetail: null, stopReason: null, stopDetail: null, stopAlone: null },
    awaitingVerdict: false,
    runs: 0,
    probeFailures: 0,
    probeDetail: null,
    ending: null,
    readyDeadline: null,
    restarts: input.restarts ?? 0,
    pendingBackoffMs: input.policy.backoffMs,
    backoffDeadline: null,
    stampedAt: input.at,
    runId: null,
    pid: null,
    runStartedAt: null,
    lastExit: null,
    spawnError: null,
  };
}

const GIVEN: ReadonlyArray<keyof CommandGiven> = ['key', 'wsId', 'label', 'policy', 'probe', 'waits', 'judged'];
const TOLD: ReadonlyArray<keyof CommandTold> = ['dependencyDetail', 'stopReason', 'stopDetail', 'stopAlone'];

/**
 * The context as observers, why(), the inspector and the snapshot file see it: one flat record
 * (fields absent from an older snapshot are undefined, dropped on the wire). Written out field by
 * field: a spread or rest of 26 fields built a dictionary again, 30 us a call.
 */
export function flatCommandContext(context: CommandContext): Record<string, unknown> {
  const { given, told } = context;
  return {
    key: given.key,
    wsId: given.wsId,
    label: given.label,
    policy: given.policy,
    probe: given.probe,
    waits: given.waits,
    judged: given.judged,
    awaitingVerdict: context.awaitingVerdict,
    runs: context.runs,
    probeFailures: context.probeFailures,
    probeDetail: context.probeDetail,
    ending: context.ending,
    readyDeadline: context.readyDeadline,
    dependencyDetail: told.dependencyDetail,
    restarts: context.restarts,
    pendingBackoffMs: context.pendingBackoffMs,
    backoffDeadline: context.backoffDeadline,
    stampedAt: context.stampedAt,
    runId: context.runId,
    pid: context.pid,
    runStartedAt: context.runStartedAt,
    lastExit: context.lastExit,
    spawnError: context.spawnError,
    stopReason: told.stopReason,
    stopDetail: told.stopDetail,
    stopAlone: told.stopAlone,
  };
}

/** A flat context (from the snapshot file, or re-hosted) as the machine holds it; only the fields it has. */
export function nestedCommandContext(flat: Record<string, unknown>): CommandContext {
  const given: Record<string, unknown> = {};
  const told: Record<string, unknown> = {};
  const run: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(flat)) {
    if ((GIVEN as readonly string[]).includes(field)) given[field] = value;
    else if ((TOLD as readonly string[]).includes(field)) told[field] = value;
    else run[field] = value;
  }
  return { given, told, ...run } as unknown as CommandContext;
}

/** Its supervisor ended the run for failing to serve: a failure whatever its exit status. */
export function endedAsFailure(context: CommandContext): boolean {
  return context.ending === 'unhealthy' || context.ending === 'startTimeout';
}

export function report(context: CommandContext, phase: MemberPhase, at: number): MemberEvent {
  return { type: 'MEMBER', key: context.given.key, phase, at };
}

/** Its request for a run (a first start or a relaunch), with what it will decide on that run's exit when it can say ahead. */
export function spawnRequest(context: CommandContext): HostRequestEvent {
  const relaunch = standingOrder(context);
  return {
    type: 'HOST_REQUEST',
    request: { type: 'spawn', wsId: context.given.wsId, key: context.given.key, restarts: context.restarts, ...(relaunch ? { relaunch } : {}) },
  };
}

export function signalRun(context: CommandContext, signal: Signal): HostRequestEvent {
  const reason = context.ending ?? 'stop';
  return { type: 'HOST_REQUEST', request: { type: 'signalRun', wsId: context.given.wsId, key: context.given.key, runId: context.runId ?? '', signal, reason } };
}

export function stopAloneSignal(context: CommandContext, graceMs: number): HostRequestEvent {
  const signal = graceMs === 0 ? 'SIGKILL' : 'SIGTERM';
  return { type: 'HOST_REQUEST', request: { type: 'signalRun', wsId: context.given.wsId, runId: context.runId ?? '', signal } };
}

/**
 * What this actor will decide when the run it asks for exits, said ahead so the host can act on
 * it without a round trip (host/main-actors/standing-orders.ts): only when the decision rests on
 * the exit status and the restart count alone — no backoff, no group to wait for (an intensity),
 * no probe (a run ended as unhealthy fails whatever its status). Anything else it may still do
 * (a stop, a group restart) signals the run first, which revokes the order.
 */
export function standingOrder(context: CommandContext): RelaunchOrder | null {
  const { policy, judged, probe } = context.given;
  if (!policy.onFailure && policy.always !== true) return null;
  if (policy.backoffMs !== 0 || context.pendingBackoffMs !== 0 || judged === true || probe) return null;
  return { always: policy.always === true, maxRestarts: policy.maxRestarts };
}
