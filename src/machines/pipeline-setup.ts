import { assign, enqueueActions, sendParent, setup } from 'xstate';
import type { HostRequestEvent } from '../protocol/host-requests.js';
import type { PipelineEvent } from '../protocol/machine-events.js';
import { backoffFrom, mayRestart } from './backoff.js';
import { backoffOver, hostLog, stampOf, throwFault, untilDeadline } from './common-actions.js';
import { DEFAULT_PIPELINE_GRACE_MS, pipelineFailed, releaseOf, signal, signalRuns, type PipelineContext, type PipelineInput } from './pipeline-context.js';
import { liveOf, restartSetOf, spliceCause, startsSplice } from './pipeline-splice.js';

// What a pipeline actor can do: its guards, actions and delays, by name. Its chart (which of
// them run when) is pipeline-machine.ts; what it knows, pipeline-context.ts.
export const pipelineSetup = setup({
  types: {
    context: {} as PipelineContext,
    events: {} as PipelineEvent,
    input: {} as PipelineInput,
  },
  delays: {
    backoff: ({ context }) => untilDeadline(context.backoffDeadline, context.stampedAt),
    grace: ({ context }) => untilDeadline(context.graceDeadline, context.stampedAt),
    spliceGrace: DEFAULT_PIPELINE_GRACE_MS,
  },
  guards: {
    ofThisAttempt: ({ context, event }) => event.type === 'NODE_EXITED' && context.runs[event.label] === event.runId,
    allEnded: ({ context }) => context.nodeLabels.every((label) => context.exits[label] !== undefined),
    failed: ({ context }) => pipelineFailed(context),
    mayRestart: ({ context }) => mayRestart(context.policy, context.restarts),
    noBackoff: ({ context }) => backoffOver(context),
    supervised: ({ context }) => context.policy.onFailure,
    noGrace: ({ context }) => context.graceMs === 0,
    startsSplice: ({ context, event }) => event.type === 'NODE_EXITED' && startsSplice(context, event),
    inSplice: ({ context, event }) => event.type === 'NODE_EXITED' && (context.splicing ?? []).includes(event.label),
    splicingEnded: ({ context }) => liveOf(context, context.splicing ?? []).length === 0,
  },
  actions: {
    requestSpawn: sendParent(({ context }): HostRequestEvent => ({
      type: 'HOST_REQUEST',
      request: { type: 'spawnPipeline', wsId: context.wsId, pipelineId: context.id, attempt: context.attempt },
    })),
    recordAttempt: assign(({ event }) => {
      if (event.type !== 'PIPELINE_SPAWNED') return {};
      return {
        runs: Object.fromEntries(event.runs.map((run) => [run.label, run.runId])),
        exits: {},
        attemptStartedAt: event.at,
        stampedAt: event.at,
        spawnError: null,
      };
    }),
    recordExit: assign(({ context, event }) => {
      if (event.type !== 'NODE_EXITED') return {};
      return {
        exits: { ...context.exits, [event.label]: { code: event.code, signal: event.signal, status: event.status } },
        stampedAt: event.at,
      };
    }),
    recordSpawnFailure: assign(({ event }) => {
      if (event.type !== 'PIPELINE_SPAWN_FAILED') return {};
      return { spawnError: event.error, stampedAt: event.at, attemptStartedAt: null };
    }),
    scheduleBackoff: assign(({ context }) => backoffFrom(context.policy, context.pendingBackoffMs, context.stampedAt, context.attemptStartedAt)),
    logBackoff: sendParent(({ context }) =>
      hostLog('warn', 'pipeline failed; restarting after backoff', {
        ws: context.wsId,
        pipeline: context.id,
        label: context.label,
        restarts: context.restarts,
        backoffMs: untilDeadline(context.backoffDeadline, context.stampedAt),
      }),
    ),
    countRestart: assign(({ context }) => ({ restarts: context.restarts + 1, attempt: context.attempt + 1, backoffDeadline: null })),
    logGiveUp: sendParent(({ context }) =>
      hostLog('error', 'pipeline failed too often; giving up', {
        ws: context.wsId,
        pipeline: context.id,
        label: context.label,
        restarts: context.restarts,
        maxRestarts: context.policy.maxRestarts,
      }),
    ),
    stamp: assign(({ event }) => stampOf(event)),
    forgetAttempt: assign(({ event }) => ({ runs: {}, exits: {}, attemptStartedAt: null, ...stampOf(event) })),
    noteStop: assign(({ event }) => {
      if (event.type !== 'STOP') return {};
      const graceMs = event.graceMs ?? DEFAULT_PIPELINE_GRACE_MS;
      return {
        graceMs,
        stampedAt: event.at,
        graceDeadline: event.at + graceMs,
        backoffDeadline: null,
        stopReason: event.reason ?? 'requested',
        stopDetail: event.detail ?? null,
      };
    }),
    // With no grace, `killing` sends SIGKILL at once and SIGTERM would only race it.
    terminate: enqueueActions(({ context, enqueue }) => {
      if (context.graceMs !== 0) enqueue.sendParent(signal(context, 'SIGTERM'));
    }),
    kill: sendParent(({ context }) => signal(context, 'SIGKILL')),
    noteSplice: assign(({ context, event }) => {
      if (event.type !== 'NODE_EXITED') return {};
      return { splicing: restartSetOf(context, event.label), spliceCause: spliceCause(context, event) };
    }),
    // The restart set's nodes still running end (SIGTERM, SIGKILL past the grace); each its own run.
    terminateSplicing: enqueueActions(({ context, enqueue }) => {
      for (const request of signalRuns(context, 'SIGTERM')) enqueue.sendParent(request);
    }),
    killSplicing: enqueueActions(({ context, enqueue }) => {
      for (const request of signalRuns(context, 'SIGKILL')) enqueue.sendParent(request);
    }),
    requestSpawnNodes: sendParent(({ context }): HostRequestEvent => ({
      type: 'HOST_REQUEST',
      request: { type: 'spawnPipeline', wsId: context.wsId, pipelineId: context.id, attempt: context.attempt, nodes: context.splicing ?? [] },
    })),
    mergeRuns: assign(({ context, event }) => {
      if (event.type !== 'PIPELINE_SPAWNED') return {};
      const restarted = new Set(event.runs.map((run) => run.label));
      return {
        runs: { ...context.runs, ...Object.fromEntries(event.runs.map((run) => [run.label, run.runId])) },
        exits: Object.fromEntries(Object.entries(context.exits).filter(([label]) => !restarted.has(label))),
        attemptStartedAt: event.at,
        stampedAt: event.at,
        spawnError: null,
        splicing: null,
      };
    }),
    // Under rest_for_one the runtime holds each node's stdin; a node that ended for good lets
    // it go, so its writer sees the end (SIGPIPE) as in a shell.
    releaseInput: enqueueActions(({ context, event, enqueue }) => {
      if (context.strategy === 'rest_for_one' && event.type === 'NODE_EXITED') enqueue.sendParent(releaseOf(context, event.label));
    }),
    // The splice gave up (its nodes cannot start again): their inputs go too.
    releaseSplicing: enqueueActions(({ context, enqueue }) => {
      for (const label of context.splicing ?? []) enqueue.sendParent(releaseOf(context, label));
      enqueue.assign({ splicing: null });
    }),
    logSplice: sendParent(({ context }) =>
      hostLog('warn', 'pipeline node failed; restarting it and its downstream (rest_for_one)', {
        ws: context.wsId,
        pipeline: context.id,
        label: context.label,
        cause: context.spliceCause ?? null,
        restarts: context.restarts,
      }),
    ),
    throwFault,
  },
});
