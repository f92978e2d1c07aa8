import { and, assign, enqueueActions, not, sendParent, setup } from 'xstate';
import type { SerializedError } from '../protocol/errors.js';
import type { CommandEvent, HostRequestEvent, Signal } from '../protocol/messages.js';
import { DEFAULT_GRACE_MS, MAX_TIMER_MS, type ResolvedRestartPolicy } from '../protocol/specs.js';
import type { ResolvedProbe } from '../protocol/supervision-spec.js';
import { mayRestart, nextBackoff } from './backoff.js';
import { backoffOver, hostLog, stampOf, untilDeadline } from './common-actions.js';
import type { GroupEvent, MemberEvent, MemberPhase } from './group-events.js';

// One supervised command: every relaunch is a new run (a new process with a new id), the
// restart count and the pending backoff carry over from run to run. The machine decides;
// the host spawns and reports, through the parent workspace actor.

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
function endedAsFailure(context: CommandContext): boolean {
  return context.ending === 'unhealthy' || context.ending === 'startTimeout';
}

function report(context: CommandContext, phase: MemberPhase, at: number): MemberEvent {
  return { type: 'MEMBER', key: context.key, phase, at };
}

function signalRun(context: CommandContext, signal: Signal): HostRequestEvent {
  const reason = context.ending ?? 'stop';
  return { type: 'HOST_REQUEST', request: { type: 'signalRun', wsId: context.wsId, key: context.key, runId: context.runId ?? '', signal, reason } };
}

function stopAloneSignal(context: CommandContext, graceMs: number): HostRequestEvent {
  const signal = graceMs === 0 ? 'SIGKILL' : 'SIGTERM';
  return { type: 'HOST_REQUEST', request: { type: 'signalRun', wsId: context.wsId, runId: context.runId ?? '', signal } };
}

/** What a live run hears in every state it can be in (up, running, ending). */
const whileEnding = {
  EXITED: [
    {
      guard: and(['isCurrentRun', 'endedByGroup']),
      target: 'waiting',
      actions: ['recordExit', { type: 'report', params: { phase: 'down' } }],
    },
    {
      guard: and(['isCurrentRun', 'relaunches', 'mayRestart', 'failed']),
      target: 'backoff',
      actions: ['recordExit', 'scheduleBackoff', 'logBackoff', 'awaitVerdict', { type: 'report', params: { phase: 'failing' } }],
    },
    // `always` after a success: relaunched, but no failure its group's strategy or intensity counts.
    {
      guard: and(['isCurrentRun', 'relaunches', 'mayRestart']),
      target: 'backoff',
      actions: ['recordExit', 'scheduleBackoff', 'logBackoff', { type: 'report', params: { phase: 'down' } }],
    },
    { guard: and(['isCurrentRun', 'failed', 'supervised']), target: 'gaveUp', actions: 'recordExit' },
    { guard: 'isCurrentRun', target: 'exited', actions: 'recordExit' },
  ],
  STOP: { target: 'stopping', actions: 'noteStop' },
  RUN_LOST: 'lost',
} as const;
/** Ending already (unhealthy, say), a group restart changes nothing: that failure is what the group hears. */
const whileRunning = { ...whileEnding, GROUP_RESTART: { target: 'ending', actions: 'markGroupRestart' } } as const;

export const commandMachine = setup({
  types: {
    context: {} as CommandContext,
    events: {} as CommandEvent | GroupEvent,
    input: {} as CommandInput,
  },
  delays: {
    backoff: ({ context }) => untilDeadline(context.backoffDeadline, context.stampedAt),
    probeInterval: ({ context }) => context.probe?.intervalMs ?? DEFAULT_GRACE_MS,
    // A run ended by its supervisor (unhealthy, or its group restarts it) has a stop's grace.
    killGrace: DEFAULT_GRACE_MS,
    stopGrace: ({ context }) => (context.stopAlone === null ? MAX_TIMER_MS : untilDeadline(context.stopAlone.deadline, context.stampedAt)),
    // Counted from the last event seen; `up` re-entered by its probe timer may count from an
    // older one and fire late, never early: a polled probe's result catches the deadline first.
    startTimeout: ({ context }) => untilDeadline(context.readyDeadline ?? null, context.stampedAt),
  },
  guards: {
    supervised: ({ context }) => context.policy.onFailure || context.policy.always === true,
    // `always` relaunches after a success too; otherwise only a failure does.
    // A run ended for being unhealthy failed, whatever its status.
    relaunches: ({ context, event }) =>
      context.policy.always === true ||
      event.type === 'SPAWN_FAILED' ||
      (event.type === 'EXITED' && (event.status !== 0 || endedAsFailure(context))),
    stoppingAlone: ({ context }) => context.stopAlone !== null,
    // Each run exits once; an exit of another run (a late or repeated report) is not this run's.
    isCurrentRun: ({ context, event }) => event.type === 'EXITED' && event.runId === context.runId,
    // A run ended for being unhealthy failed, whatever its status.
    failed: ({ context, event }) =>
      event.type === 'SPAWN_FAILED' || (event.type === 'EXITED' && (event.status !== 0 || endedAsFailure(context))),
    hasReadyDeadline: ({ context }) => (context.readyDeadline ?? null) !== null,
    // A failed probe of this run after the deadline: not ready in time (the timer may come later).
    startTimedOut: ({ context, event }) =>
      event.type === 'PROBE_RESULT' && event.runId === context.runId && !event.ok &&
      (context.readyDeadline ?? null) !== null && event.at >= context.readyDeadline!,
    endedByGroup: ({ context }) => context.ending === 'group',
    // Snapshots saved before readiness existed lack these fields: absent means none.
    waits: ({ context }) => context.waits === true,
    hasRun: ({ context }) => (context.runs ?? 0) > 0,
    noProbe: ({ context }) => !context.probe,
    polled: ({ context }) => context.probe?.polled === true,
    probeOk: ({ context, event }) => event.type === 'PROBE_RESULT' && event.runId === context.runId && event.ok,
    probeOfThisRun: ({ context, event }) => event.type === 'PROBE_RESULT' && event.runId === context.runId,
    unhealthyNow: ({ context, event }) =>
      event.type === 'PROBE_RESULT' && event.runId === context.runId && !event.ok &&
      context.probeFailures + 1 >= (context.probe?.failureThreshold ?? 1),
    mayRestart: ({ context }) => mayRestart(context.policy, context.restarts),
    noBackoff: ({ context }) => backoffOver(context),
    awaitingVerdict: ({ context }) => context.awaitingVerdict === true,
  },
  actions: {
    requestSpawn: sendParent(({ context }): HostRequestEvent => ({
      type: 'HOST_REQUEST',
      request: { type: 'spawn', wsId: context.wsId, key: context.key, restarts: context.restarts },
    })),
    recordRun: assign(({ context, event }) => {
      if (event.type !== 'SPAWNED') return {};
      return {
        runId: event.runId,
        pid: event.pid,
        runStartedAt: event.at,
        stampedAt: event.at,
        spawnError: null,
        runs: (context.runs ?? 0) + 1,
        probeFailures: 0,
        probeDetail: null,
        ending: null,
        readyDeadline: context.probe && (context.probe.startTimeoutMs ?? 0) > 0 ? event.at + context.probe.startTimeoutMs : null,
      };
    }),
    recordExit: assign(({ context, event }) => {
      if (event.type === 'EXITED') {
        return { lastExit: { code: event.code, signal: event.signal, status: event.status, reason: context.ending }, stampedAt: event.at };
      }
      if (event.type === 'SPAWN_FAILED') return { spawnError: event.error, stampedAt: event.at, runStartedAt: null };
      return {};
    }),
    scheduleBackoff: assign(({ context }) => {
      const ranFor = context.runStartedAt === null ? 0 : context.stampedAt - context.runStartedAt;
      const { delayMs, followingMs } = nextBackoff(context.policy, context.pendingBackoffMs, ranFor);
      return { backoffDeadline: context.stampedAt + delayMs, pendingBackoffMs: followingMs };
    }),
    logBackoff: sendParent(({ context }) =>
      hostLog('warn', 'command failed; restarting after backoff', {
        ws: context.wsId,
        command: context.key,
        label: context.label,
        run: context.runId,
        status: context.lastExit?.status ?? null,
        restarts: context.restarts,
        backoffMs: untilDeadline(context.backoffDeadline, context.stampedAt),
      }),
    ),
    countRestart: assign(({ context }) => ({ restarts: context.restarts + 1, backoffDeadline: null })),
    clearBackoff: assign({ backoffDeadline: null }),
    // Past its group's intensity the group stops it: no run may start before the group has judged.
    awaitVerdict: assign(({ context }) => ({ awaitingVerdict: context.judged === true })),
    clearVerdict: assign(({ event }) => ({ awaitingVerdict: false, ...stampOf(event) })),
    noteStop: assign(({ event }) => {
      if (event.type !== 'STOP') return {};
      const alone = event.graceMs === undefined ? null : { graceMs: event.graceMs, deadline: event.at + event.graceMs };
      return { stopReason: event.reason ?? 'requested', stopDetail: event.detail ?? null, stopAlone: alone, stampedAt: event.at };
    }),
    killRun: sendParent(({ context }): HostRequestEvent => ({
      type: 'HOST_REQUEST',
      request: { type: 'signalRun', wsId: context.wsId, runId: context.runId ?? '', signal: 'SIGKILL' },
    })),
    stamp: assign(({ event }) => stampOf(event)),
    forgetRun: assign(({ event }) => ({ runId: null, pid: null, runStartedAt: null, ...stampOf(event) })),
    logGiveUp: sendParent(({ context }) =>
      hostLog('error', 'command failed too often; giving up', {
        ws: context.wsId,
        command: context.key,
        label: context.label,
        restarts: context.restarts,
        maxRestarts: context.policy.maxRestarts,
        status: context.lastExit?.status ?? null,
      }),
    ),
    report: sendParent(({ context, event }, params: { phase: MemberPhase }) =>
      report(context, params.phase, 'at' in event ? event.at : context.stampedAt),
    ),
    // Its dependants care whether a one-shot command succeeded.
    reportExit: sendParent(({ context }) => report(context, context.lastExit?.status === 0 ? 'succeeded' : 'exited', context.stampedAt)),
    requestProbe: sendParent(({ context }): HostRequestEvent => ({
      type: 'HOST_REQUEST',
      request: { type: 'probe', wsId: context.wsId, key: context.key, runId: context.runId ?? '' },
    })),
    noteProbe: assign(({ context, event }) => {
      if (event.type !== 'PROBE_RESULT') return {};
      return { probeFailures: event.ok ? 0 : context.probeFailures + 1, probeDetail: event.detail, stampedAt: event.at };
    }),
    markUnhealthy: assign({ ending: 'unhealthy' as const }),
    markStartTimeout: assign(({ event }) => ({ ending: 'startTimeout' as const, ...('at' in event ? { stampedAt: event.at } : {}) })),
    logStartTimeout: sendParent(({ context }) =>
      hostLog('warn', 'command not ready in time: ending the run', {
        ws: context.wsId,
        command: context.key,
        label: context.label,
        run: context.runId,
        probe: context.probe?.text ?? null,
        startTimeoutMs: context.probe?.startTimeoutMs ?? null,
        detail: context.probeDetail,
      }),
    ),
    markGroupRestart: assign(({ event }) => ({ ending: 'group' as const, stopDetail: event.type === 'GROUP_RESTART' ? event.cause : null })),
    // Its workspace signals every group when it stops; a command stopped alone signals its own run.
    terminateRun: enqueueActions(({ context, enqueue }) => {
      if (context.stopAlone !== null && context.runId !== null) enqueue.sendParent(stopAloneSignal(context, context.stopAlone.graceMs));
    }),
    endRun: sendParent(({ context }) => signalRun(context, 'SIGTERM')),
    killEndingRun: sendParent(({ context }) => signalRun(context, 'SIGKILL')),
    noteUnmet: assign(({ event }) => (event.type === 'DEPENDENCY_FAILED' ? { dependencyDetail: event.detail, stampedAt: event.at } : {})),
    logUnhealthy: sendParent(({ context }) =>
      hostLog('warn', 'command unhealthy: its readiness probe failed while ready; ending the run', {
        ws: context.wsId,
        command: context.key,
        label: context.label,
        run: context.runId,
        probe: context.probe?.text ?? null,
        failures: context.probeFailures,
        detail: context.probeDetail,
      }),
    ),
    // Inline, not common-actions' throwFault: its loose parameter type breaks XState's inference of
    // the parameterized `report` action here.
    throwFault: ({ event }) => {
      throw new Error(event.type === 'FAULT' ? event.message : 'fault');
    },
  },
}).createMachine({
  id: 'command',
  context: ({ input }) => ({
    key: input.key,
    wsId: input.wsId,
    label: input.label,
    policy: input.policy,
    probe: input.probe ?? null,
    waits: input.waits ?? false,
    judged: input.judged ?? false,
    awaitingVerdict: false,
    runs: 0,
    probeFailures: 0,
    probeDetail: null,
    ending: null,
    readyDeadline: null,
    dependencyDetail: null,
    restarts: input.restarts ?? 0,
    pendingBackoffMs: input.policy.backoffMs,
    backoffDeadline: null,
    stampedAt: input.at,
    runId: null,
    pid: null,
    runStartedAt: null,
    lastExit: null,
    spawnError: null,
    stopReason: null,
    stopDetail: null,
    stopAlone: null,
  }),
  initial: 'waiting',
  on: { FAULT: { actions: 'throwFault' } },
  states: {
    // Its dependencies do not all hold yet (its workspace says when they do); without any, it
    // starts at once. A group restart comes back here too: dependants wait for their dependencies.
    waiting: {
      always: [
        { guard: and(['hasRun', not('waits')]), target: 'restarting', actions: 'countRestart' },
        { guard: not('waits'), target: 'starting' },
      ],
      entry: { type: 'report', params: { phase: 'waiting' } },
      on: {
        DEPENDENCIES_MET: [{ guard: 'hasRun', target: 'restarting', actions: 'countRestart' }, { target: 'starting' }],
        DEPENDENCY_FAILED: { target: 'unmet', actions: 'noteUnmet' },
        STOP: { target: 'stopped', actions: 'noteStop' },
        // Restored while waiting: the workspace hears it again and says whether to go on.
        RESUME: { target: 'waiting', reenter: true, actions: 'stamp' },
      },
    },
    starting: {
      entry: 'requestSpawn',
      on: {
        SPAWNED: { target: 'up', actions: ['recordRun', { type: 'report', params: { phase: 'up' } }] },
        // The first spawn failing is reported to the caller of run(); nothing to supervise.
        SPAWN_FAILED: { target: 'failed', actions: 'recordExit' },
        STOP: { target: 'stopping', actions: 'noteStop' },
        RUN_LOST: 'lost',
      },
    },
    // Spawned ("up", s6's u), not ready until its probe says so; `running` is ready (s6's U).
    // Without a probe it is ready once spawned: it passes through `up` in the same step.
    up: {
      always: { guard: 'noProbe', target: 'running', actions: { type: 'report', params: { phase: 'ready' } } },
      after: {
        probeInterval: { guard: 'polled', target: 'up', reenter: true, actions: 'requestProbe' },
        startTimeout: { guard: 'hasReadyDeadline', target: 'ending', actions: ['markStartTimeout', 'logStartTimeout'] },
      },
      on: {
        // Not ready yet: failures are counted and shown, acted on only past startTimeoutMs (it may start slowly).
        PROBE_RESULT: [
          { guard: 'probeOk', target: 'running', actions: ['noteProbe', { type: 'report', params: { phase: 'ready' } }] },
          { guard: 'startTimedOut', target: 'ending', actions: ['noteProbe', 'markStartTimeout', 'logStartTimeout'] },
          { guard: 'probeOfThisRun', actions: 'noteProbe' },
        ],
        RESUME: { target: 'up', reenter: true, actions: 'stamp' },
        ...whileRunning,
      },
    },
    // Ready. Polled probes go on as liveness checks: failureThreshold failures in a row end the run.
    running: {
      after: { probeInterval: { guard: 'polled', target: 'running', reenter: true, actions: 'requestProbe' } },
      on: {
        PROBE_RESULT: [
          { guard: 'unhealthyNow', target: 'ending', actions: ['noteProbe', 'markUnhealthy', 'logUnhealthy'] },
          { guard: 'probeOfThisRun', actions: 'noteProbe' },
        ],
        RESUME: { target: 'running', reenter: true, actions: 'stamp' },
        ...whileRunning,
      },
    },
    // Its supervisor ends the run (unhealthy, or its group restarts it): SIGTERM, then SIGKILL.
    ending: {
      entry: 'endRun',
      after: { killGrace: { actions: 'killEndingRun' } },
      on: whileEnding,
    },
    // Restored without its process: a supervised command starts again (not counted as a
    // restart: it did not fail), a one-shot one is over.
    lost: {
      entry: 'forgetRun',
      always: [{ guard: 'supervised', target: 'restarting' }, { target: 'stopped' }],
    },
    backoff: {
      // A zero backoff relaunches in the same step: a 0 ms timer would still cost a turn (~1 ms).
      always: { guard: and(['noBackoff', not('awaitingVerdict')]), target: 'restarting', actions: 'countRestart' },
      after: { backoff: { guard: not('awaitingVerdict'), target: 'restarting', actions: 'countRestart' } },
      on: {
        // A stop during backoff cancels the relaunch: nothing respawns (its group gave up, say).
        STOP: { target: 'stopped', actions: ['clearBackoff', 'noteStop'] },
        // Within its group's intensity: relaunch once the backoff is over (now, if it already is).
        GROUP_VERDICT: { actions: 'clearVerdict' },
        // Restored: the timer is armed again for what is left until the deadline; the group
        // judged before the snapshot (a give-up would have stopped it).
        RESUME: { target: 'backoff', reenter: true, actions: ['stamp', 'clearVerdict'] },
      },
    },
    restarting: {
      entry: 'requestSpawn',
      on: {
        SPAWNED: { target: 'up', actions: ['recordRun', { type: 'report', params: { phase: 'up' } }] },
        SPAWN_FAILED: [
          {
            guard: 'mayRestart',
            target: 'backoff',
            actions: ['recordExit', 'scheduleBackoff', 'logBackoff', 'awaitVerdict', { type: 'report', params: { phase: 'failing' } }],
          },
          { target: 'gaveUp', actions: 'recordExit' },
        ],
        STOP: { target: 'stopping', actions: 'noteStop' },
        RUN_LOST: 'lost',
      },
    },
    stopping: {
      entry: { type: 'terminateRun' },
      after: { stopGrace: { guard: 'stoppingAlone', actions: 'killRun' } },
      on: {
        SPAWNED: { actions: ['recordRun', 'terminateRun'] },
        EXITED: { guard: 'isCurrentRun', target: 'stopped', actions: 'recordExit' },
        SPAWN_FAILED: { target: 'stopped', actions: 'recordExit' },
        RUN_LOST: { target: 'stopped', actions: 'forgetRun' },
        RESUME: { target: 'stopping', reenter: true, actions: 'stamp' },
      },
    },
    exited: {
      type: 'final',
      entry: 'reportExit',
    },
    gaveUp: { type: 'final', entry: ['logGiveUp', { type: 'report', params: { phase: 'gaveUp' } }] },
    failed: { type: 'final', entry: { type: 'report', params: { phase: 'failed' } } },
    stopped: { type: 'final', entry: { type: 'report', params: { phase: 'stopped' } } },
    // A dependency can never hold: it never started.
    unmet: { type: 'final', entry: { type: 'report', params: { phase: 'unmet' } } },
  },
});
