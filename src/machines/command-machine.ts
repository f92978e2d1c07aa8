import { and, assign, enqueueActions, sendParent, setup } from 'xstate';
import type { SerializedError } from '../protocol/errors.js';
import type { CommandEvent, HostRequestEvent } from '../protocol/messages.js';
import { MAX_TIMER_MS, type ResolvedRestartPolicy } from '../protocol/specs.js';
import { mayRestart, nextBackoff } from './backoff.js';
import { backoffOver, hostLog, stampOf, throwFault, untilDeadline } from './common-actions.js';

// One supervised command: every relaunch is a new run (a new process with a new id), the
// restart count and the pending backoff carry over from run to run. The machine decides;
// the host spawns and reports, through the parent workspace actor.

export interface CommandInput {
  key: string;
  wsId: string;
  label: string;
  policy: ResolvedRestartPolicy;
  at: number;
  /** A command restarted by request after it ended starts a new actor that keeps counting. */
  restarts?: number;
}

export interface CommandContext {
  key: string;
  wsId: string;
  label: string;
  policy: ResolvedRestartPolicy;
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
  lastExit: { code: number | null; signal: string | null; status: number } | null;
  spawnError: SerializedError | null;
  /** Why it was told to stop: its workspace's reason (and the quota breach, if that was it). */
  stopReason: string | null;
  stopDetail: string | null;
  /** A stop of this command alone (not of its workspace): it signals its own run. */
  stopAlone: { graceMs: number; deadline: number } | null;
}

export const commandMachine = setup({
  types: {
    context: {} as CommandContext,
    events: {} as CommandEvent,
    input: {} as CommandInput,
  },
  delays: {
    backoff: ({ context }) => untilDeadline(context.backoffDeadline, context.stampedAt),
    stopGrace: ({ context }) => (context.stopAlone === null ? MAX_TIMER_MS : untilDeadline(context.stopAlone.deadline, context.stampedAt)),
  },
  guards: {
    supervised: ({ context }) => context.policy.onFailure || context.policy.always === true,
    // `always` relaunches after a success too; otherwise only a failure does.
    relaunches: ({ context, event }) =>
      context.policy.always === true || event.type === 'SPAWN_FAILED' || (event.type === 'EXITED' && event.status !== 0),
    stoppingAlone: ({ context }) => context.stopAlone !== null,
    // Each run exits once; an exit of another run (a late or repeated report) is not this run's.
    isCurrentRun: ({ context, event }) => event.type === 'EXITED' && event.runId === context.runId,
    failed: ({ event }) => event.type === 'SPAWN_FAILED' || (event.type === 'EXITED' && event.status !== 0),
    mayRestart: ({ context }) => mayRestart(context.policy, context.restarts),
    noBackoff: ({ context }) => backoffOver(context),
  },
  actions: {
    requestSpawn: sendParent(({ context }): HostRequestEvent => ({
      type: 'HOST_REQUEST',
      request: { type: 'spawn', wsId: context.wsId, key: context.key, restarts: context.restarts },
    })),
    recordRun: assign(({ event }) => {
      if (event.type !== 'SPAWNED') return {};
      return { runId: event.runId, pid: event.pid, runStartedAt: event.at, stampedAt: event.at, spawnError: null };
    }),
    recordExit: assign(({ event }) => {
      if (event.type === 'EXITED') {
        return { lastExit: { code: event.code, signal: event.signal, status: event.status }, stampedAt: event.at };
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
    noteStop: assign(({ event }) => {
      if (event.type !== 'STOP') return {};
      const alone = event.graceMs === undefined ? null : { graceMs: event.graceMs, deadline: event.at + event.graceMs };
      return { stopReason: event.reason ?? 'requested', stopDetail: event.detail ?? null, stopAlone: alone, stampedAt: event.at };
    }),
    // Its workspace signals every group when it stops; a command stopped alone signals its own run.
    terminateRun: enqueueActions(({ context, enqueue }) => {
      if (context.stopAlone === null || context.runId === null) return;
      const signal = context.stopAlone.graceMs === 0 ? 'SIGKILL' : 'SIGTERM';
      enqueue.sendParent({ type: 'HOST_REQUEST', request: { type: 'signalRun', wsId: context.wsId, runId: context.runId, signal } });
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
    throwFault,
  },
}).createMachine({
  id: 'command',
  context: ({ input }) => ({
    key: input.key,
    wsId: input.wsId,
    label: input.label,
    policy: input.policy,
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
  initial: 'starting',
  on: { FAULT: { actions: 'throwFault' } },
  states: {
    starting: {
      entry: 'requestSpawn',
      on: {
        SPAWNED: { target: 'running', actions: 'recordRun' },
        // The first spawn failing is reported to the caller of run(); nothing to supervise.
        SPAWN_FAILED: { target: 'failed', actions: 'recordExit' },
        STOP: { target: 'stopping', actions: 'noteStop' },
        RUN_LOST: 'lost',
      },
    },
    running: {
      on: {
        EXITED: [
          {
            guard: and(['isCurrentRun', 'relaunches', 'mayRestart']),
            target: 'backoff',
            actions: ['recordExit', 'scheduleBackoff', 'logBackoff'],
          },
          { guard: and(['isCurrentRun', 'failed', 'supervised']), target: 'gaveUp', actions: 'recordExit' },
          { guard: 'isCurrentRun', target: 'exited', actions: 'recordExit' },
        ],
        STOP: { target: 'stopping', actions: 'noteStop' },
        RUN_LOST: 'lost',
      },
    },
    // Restored without its process: a supervised command starts again (not counted as a
    // restart: it did not fail), a one-shot one is over.
    lost: {
      entry: 'forgetRun',
      always: [{ guard: 'supervised', target: 'restarting' }, { target: 'stopped' }],
    },
    backoff: {
      // A zero backoff relaunches in the same step: a 0 ms timer would still cost a turn (~1 ms).
      always: { guard: 'noBackoff', target: 'restarting', actions: 'countRestart' },
      after: { backoff: { target: 'restarting', actions: 'countRestart' } },
      on: {
        // A stop during backoff cancels the relaunch: nothing respawns.
        STOP: { target: 'stopped', actions: ['clearBackoff', 'noteStop'] },
        // Restored: the timer is armed again for what is left until the deadline.
        RESUME: { target: 'backoff', reenter: true, actions: 'stamp' },
      },
    },
    restarting: {
      entry: 'requestSpawn',
      on: {
        SPAWNED: { target: 'running', actions: 'recordRun' },
        SPAWN_FAILED: [
          { guard: 'mayRestart', target: 'backoff', actions: ['recordExit', 'scheduleBackoff', 'logBackoff'] },
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
    exited: { type: 'final' },
    gaveUp: { type: 'final', entry: 'logGiveUp' },
    failed: { type: 'final' },
    stopped: { type: 'final' },
  },
});
