import { and, assign, enqueueActions, not, sendParent, setup } from 'xstate';
import type { HostRequestEvent } from '../protocol/host-requests.js';
import type { CommandEvent } from '../protocol/machine-events.js';
import { DEFAULT_GRACE_MS } from '../protocol/specs.js';
import { backoffFrom, mayRestart } from './backoff.js';
import { endedAsFailure, report, signalRun, spawnRequest, stopAloneSignal, type CommandContext, type CommandInput } from './command-context.js';
import { backoffOver, hostLog, stampOf, untilDeadline } from './common-actions.js';
import type { GroupEvent, MemberPhase } from './group-events.js';
import { NO_TIMER } from './no-timer.js';

// What a command actor can do: its guards, actions and delays, by name. Its chart (which of
// them run when) is command-machine.ts.
export const commandSetup = setup({
  types: {
    context: {} as CommandContext,
    events: {} as CommandEvent | GroupEvent,
    input: {} as CommandInput,
  },
  delays: {
    backoff: ({ context }) => untilDeadline(context.backoffDeadline, context.stampedAt),
    // Nothing to poll (no probe, or one the command tells itself): no timer, as for every run
    // of most commands (a timer armed and cleared per run was a share of the worker's restart).
    probeInterval: ({ context }) => (context.given.probe?.polled === true ? context.given.probe.intervalMs : NO_TIMER),
    // A run ended by its supervisor (unhealthy, or its group restarts it) has a stop's grace.
    killGrace: DEFAULT_GRACE_MS,
    // Stopped with its workspace, the workspace's own grace kills the run: nothing to arm here.
    stopGrace: ({ context }) => (context.told.stopAlone === null ? NO_TIMER : untilDeadline(context.told.stopAlone.deadline, context.stampedAt)),
    // Counted from the last event seen; `up` re-entered by its probe timer may count from an
    // older one and fire late, never early: a polled probe's result catches the deadline first.
    startTimeout: ({ context }) =>
      (context.readyDeadline ?? null) === null ? NO_TIMER : untilDeadline(context.readyDeadline ?? null, context.stampedAt),
  },
  guards: {
    supervised: ({ context }) => context.given.policy.onFailure || context.given.policy.always === true,
    // `always` relaunches after a success too; otherwise only a failure does.
    // A run ended for being unhealthy failed, whatever its status.
    relaunches: ({ context, event }) =>
      context.given.policy.always === true ||
      event.type === 'SPAWN_FAILED' ||
      (event.type === 'EXITED' && (event.status !== 0 || endedAsFailure(context))),
    stoppingAlone: ({ context }) => context.told.stopAlone !== null,
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
    waits: ({ context }) => context.given.waits === true,
    hasRun: ({ context }) => (context.runs ?? 0) > 0,
    noProbe: ({ context }) => !context.given.probe,
    polled: ({ context }) => context.given.probe?.polled === true,
    probeOk: ({ context, event }) => event.type === 'PROBE_RESULT' && event.runId === context.runId && event.ok,
    probeOfThisRun: ({ context, event }) => event.type === 'PROBE_RESULT' && event.runId === context.runId,
    unhealthyNow: ({ context, event }) =>
      event.type === 'PROBE_RESULT' && event.runId === context.runId && !event.ok &&
      context.probeFailures + 1 >= (context.given.probe?.failureThreshold ?? 1),
    mayRestart: ({ context }) => mayRestart(context.given.policy, context.restarts),
    noBackoff: ({ context }) => backoffOver(context),
    awaitingVerdict: ({ context }) => context.awaitingVerdict === true,
  },
  actions: {
    requestSpawn: sendParent(({ context }) => spawnRequest(context)),
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
        readyDeadline: context.given.probe && (context.given.probe.startTimeoutMs ?? 0) > 0 ? event.at + context.given.probe.startTimeoutMs : null,
      };
    }),
    recordExit: assign(({ context, event }) => {
      if (event.type === 'EXITED') {
        return { lastExit: { code: event.code, signal: event.signal, status: event.status, reason: context.ending }, stampedAt: event.at };
      }
      if (event.type === 'SPAWN_FAILED') return { spawnError: event.error, stampedAt: event.at, runStartedAt: null };
      return {};
    }),
    scheduleBackoff: assign(({ context }) => backoffFrom(context.given.policy, context.pendingBackoffMs, context.stampedAt, context.runStartedAt)),
    logBackoff: sendParent(({ context }) =>
      hostLog('warn', 'command failed; restarting after backoff', {
        ws: context.given.wsId,
        command: context.given.key,
        label: context.given.label,
        run: context.runId,
        status: context.lastExit?.status ?? null,
        restarts: context.restarts,
        backoffMs: untilDeadline(context.backoffDeadline, context.stampedAt),
      }),
    ),
    countRestart: assign(({ context }) => ({ restarts: context.restarts + 1, backoffDeadline: null })),
    clearBackoff: assign({ backoffDeadline: null }),
    // Past its group's intensity the group stops it: no run may start before the group has judged.
    awaitVerdict: assign(({ context }) => ({ awaitingVerdict: context.given.judged === true })),
    clearVerdict: assign(({ event }) => ({ awaitingVerdict: false, ...stampOf(event) })),
    noteStop: assign(({ context, event }) => {
      if (event.type !== 'STOP') return {};
      const alone = event.graceMs === undefined ? null : { graceMs: event.graceMs, deadline: event.at + event.graceMs };
      return { told: { ...context.told, stopReason: event.reason ?? 'requested', stopDetail: event.detail ?? null, stopAlone: alone }, stampedAt: event.at };
    }),
    killRun: sendParent(({ context }): HostRequestEvent => ({
      type: 'HOST_REQUEST',
      request: { type: 'signalRun', wsId: context.given.wsId, runId: context.runId ?? '', signal: 'SIGKILL' },
    })),
    stamp: assign(({ event }) => stampOf(event)),
    forgetRun: assign(({ event }) => ({ runId: null, pid: null, runStartedAt: null, ...stampOf(event) })),
    logGiveUp: sendParent(({ context }) =>
      hostLog('error', 'command failed too often; giving up', {
        ws: context.given.wsId,
        command: context.given.key,
        label: context.given.label,
        restarts: context.restarts,
        maxRestarts: context.given.policy.maxRestarts,
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
      request: { type: 'probe', wsId: context.given.wsId, key: context.given.key, runId: context.runId ?? '' },
    })),
    noteProbe: assign(({ context, event }) => {
      if (event.type !== 'PROBE_RESULT') return {};
      return { probeFailures: event.ok ? 0 : context.probeFailures + 1, probeDetail: event.detail, stampedAt: event.at };
    }),
    markUnhealthy: assign({ ending: 'unhealthy' as const }),
    markStartTimeout: assign(({ event }) => ({ ending: 'startTimeout' as const, ...('at' in event ? { stampedAt: event.at } : {}) })),
    logStartTimeout: sendParent(({ context }) =>
      hostLog('warn', 'command not ready in time: ending the run', {
        ws: context.given.wsId,
        command: context.given.key,
        label: context.given.label,
        run: context.runId,
        probe: context.given.probe?.text ?? null,
        startTimeoutMs: context.given.probe?.startTimeoutMs ?? null,
        detail: context.probeDetail,
      }),
    ),
    markGroupRestart: assign(({ context, event }) => ({
      ending: 'group' as const,
      told: { ...context.told, stopDetail: event.type === 'GROUP_RESTART' ? event.cause : null },
    })),
    // Its workspace signals every group when it stops; a command stopped alone signals its own run.
    terminateRun: enqueueActions(({ context, enqueue }) => {
      if (context.told.stopAlone !== null && context.runId !== null) enqueue.sendParent(stopAloneSignal(context, context.told.stopAlone.graceMs));
    }),
    endRun: enqueueActions(({ context, event, enqueue }) => {
      // Entered again at a restore or a re-hosting (RESUME) only to arm its kill grace again
      // (XState keeps no timer in a snapshot): its SIGTERM was sent before the snapshot.
      if (event.type !== 'RESUME') enqueue.sendParent(signalRun(context, 'SIGTERM'));
    }),
    killEndingRun: sendParent(({ context }) => signalRun(context, 'SIGKILL')),
    noteUnmet: assign(({ context, event }) =>
      event.type === 'DEPENDENCY_FAILED' ? { told: { ...context.told, dependencyDetail: event.detail }, stampedAt: event.at } : {},
    ),
    logUnhealthy: sendParent(({ context }) =>
      hostLog('warn', 'command unhealthy: its readiness probe failed while ready; ending the run', {
        ws: context.given.wsId,
        command: context.given.key,
        label: context.given.label,
        run: context.runId,
        probe: context.given.probe?.text ?? null,
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
});
