import { and, assign, enqueueActions, sendParent, setup } from 'xstate';
import type { HostRequestEvent, PipelineEvent } from '../protocol/messages.js';
import { mayRestart, nextBackoff } from './backoff.js';
import { backoffOver, hostLog, stampOf, throwFault, untilDeadline } from './common-actions.js';
import { DEFAULT_PIPELINE_GRACE_MS, pipelineFailed, releaseOf, signal, signalRuns, type PipelineContext, type PipelineInput } from './pipeline-context.js';
import { liveOf, restartSetOf, spliceCause, startsSplice } from './pipeline-splice.js';

export { pipelineFailed, type NodeExit, type PipelineContext, type PipelineInput } from './pipeline-context.js';

// A pipeline: a graph of commands started together over real pipes and supervised as a
// unit. It ends when all its nodes have ended; if it failed (by its `discern` rule) and its
// policy allows, all of it starts again after a backoff. Never while a node still runs; except
// under rest_for_one (`splicing`): a failed node and its downstream restart while upstream
// nodes run on, the new node spliced into the edge the runtime held (docs/pipeline-strategies.md).

export const pipelineMachine = setup({
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
    scheduleBackoff: assign(({ context }) => {
      const ranFor = context.attemptStartedAt === null ? 0 : context.stampedAt - context.attemptStartedAt;
      const { delayMs, followingMs } = nextBackoff(context.policy, context.pendingBackoffMs, ranFor);
      return { backoffDeadline: context.stampedAt + delayMs, pendingBackoffMs: followingMs };
    }),
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
}).createMachine({
  id: 'pipeline',
  context: ({ input }) => ({
    id: input.id,
    wsId: input.wsId,
    label: input.label,
    nodeLabels: input.nodeLabels,
    upstreamLabels: input.upstreamLabels,
    discern: input.discern,
    policy: input.policy,
    attempt: 0,
    runs: {},
    exits: {},
    restarts: 0,
    pendingBackoffMs: input.policy.backoffMs,
    backoffDeadline: null,
    attemptStartedAt: null,
    stampedAt: input.at,
    graceMs: DEFAULT_PIPELINE_GRACE_MS,
    graceDeadline: null,
    spawnError: null,
    stopReason: null,
    stopDetail: null,
    strategy: input.strategy ?? 'one_for_all',
    restartSets: input.restartSets ?? {},
    strategyNote: input.strategyNote ?? null,
    splicing: null,
    spliceCause: null,
  }),
  initial: 'created',
  on: { FAULT: { actions: 'throwFault' } },
  states: {
    created: {
      entry: 'requestSpawn',
      on: {
        PIPELINE_SPAWNED: { target: 'running', actions: 'recordAttempt' },
        // Nothing started (the host starts all nodes or none): run() reports the cause.
        PIPELINE_SPAWN_FAILED: { target: 'failed', actions: 'recordSpawnFailure' },
        STOP: { target: 'stopping', actions: 'noteStop' },
        RUN_LOST: 'lost',
      },
    },
    running: {
      always: [
        { guard: and(['allEnded', 'failed', 'mayRestart']), target: 'backoff', actions: ['scheduleBackoff', 'logBackoff'] },
        { guard: and(['allEnded', 'failed', 'supervised']), target: 'gaveUp' },
        { guard: and(['allEnded', 'failed']), target: 'failed' },
        { guard: 'allEnded', target: 'succeeded' },
        // A node failed while others still run: wait for them, never restart over them.
        { guard: 'failed', target: 'reaping' },
      ],
      on: {
        NODE_EXITED: [
          { guard: and(['ofThisAttempt', 'startsSplice', 'supervised', 'mayRestart']), target: 'splicing', actions: ['recordExit', 'noteSplice'] },
          { guard: 'ofThisAttempt', actions: ['recordExit', 'releaseInput'] },
        ],
        STOP: { target: 'stopping', actions: 'noteStop' },
        RUN_LOST: 'lost',
      },
    },
    // rest_for_one: the failed node and its downstream end, wait their backoff and start again,
    // spliced into the edge their upstream still writes to; the other nodes run on.
    splicing: {
      initial: 'terminating',
      states: {
        terminating: {
          entry: 'terminateSplicing',
          always: { guard: 'splicingEnded', target: 'backoff', actions: ['scheduleBackoff', 'logSplice'] },
          after: { spliceGrace: { actions: 'killSplicing' } },
          // Restored: SIGTERM again (harmless) and the grace armed again.
          on: { RESUME: { target: 'terminating', reenter: true, actions: 'stamp' } },
        },
        backoff: {
          always: { guard: 'noBackoff', target: 'respawning', actions: 'countRestart' },
          after: { backoff: { target: 'respawning', actions: 'countRestart' } },
          on: { RESUME: { target: 'backoff', reenter: true, actions: 'stamp' } },
        },
        respawning: {
          entry: 'requestSpawnNodes',
          on: {
            PIPELINE_SPAWNED: { target: '#pipeline.running', actions: 'mergeRuns' },
            PIPELINE_SPAWN_FAILED: [
              { guard: 'mayRestart', target: 'backoff', actions: ['recordSpawnFailure', 'scheduleBackoff', 'logBackoff'] },
              { target: '#pipeline.reaping', actions: ['recordSpawnFailure', 'releaseSplicing'] },
            ],
          },
        },
      },
      on: {
        NODE_EXITED: [
          { guard: and(['ofThisAttempt', 'inSplice']), actions: 'recordExit' },
          { guard: 'ofThisAttempt', actions: ['recordExit', 'releaseInput'] },
        ],
        STOP: { target: 'stopping', actions: 'noteStop' },
        RUN_LOST: 'lost',
      },
    },
    // Restored without its processes: a supervised pipeline starts again (not counted as a
    // restart: it did not fail), another is over.
    lost: {
      entry: 'forgetAttempt',
      always: [{ guard: 'supervised', target: 'restarting' }, { target: 'stopped' }],
    },
    reaping: {
      always: [
        { guard: and(['allEnded', 'mayRestart']), target: 'backoff', actions: ['scheduleBackoff', 'logBackoff'] },
        { guard: and(['allEnded', 'supervised']), target: 'gaveUp' },
        { guard: 'allEnded', target: 'failed' },
      ],
      on: {
        NODE_EXITED: { guard: 'ofThisAttempt', actions: ['recordExit', 'releaseInput'] },
        STOP: { target: 'stopping', actions: 'noteStop' },
        RUN_LOST: 'lost',
      },
    },
    backoff: {
      // A zero backoff relaunches in the same step: a 0 ms timer would still cost a turn (~1 ms).
      always: { guard: 'noBackoff', target: 'restarting', actions: 'countRestart' },
      after: { backoff: { target: 'restarting', actions: 'countRestart' } },
      on: {
        // A stop during backoff cancels the restart: nothing respawns.
        STOP: { target: 'stopped', actions: 'noteStop' },
        // Restored: the timer is armed again for what is left until the deadline.
        RESUME: { target: 'backoff', reenter: true, actions: 'stamp' },
      },
    },
    restarting: {
      entry: 'requestSpawn',
      on: {
        PIPELINE_SPAWNED: { target: 'running', actions: 'recordAttempt' },
        PIPELINE_SPAWN_FAILED: [
          {
            guard: 'mayRestart',
            target: 'backoff',
            actions: ['recordSpawnFailure', 'scheduleBackoff', 'logBackoff'],
          },
          { target: 'gaveUp', actions: 'recordSpawnFailure' },
        ],
        STOP: { target: 'stopping', actions: 'noteStop' },
        RUN_LOST: 'lost',
      },
    },
    stopping: {
      entry: 'terminate',
      initial: 'terminating',
      states: {
        terminating: {
          always: { guard: 'noGrace', target: 'killing' },
          after: { grace: 'killing' },
        },
        killing: { entry: 'kill' },
      },
      on: {
        PIPELINE_SPAWNED: { actions: 'recordAttempt' },
        NODE_EXITED: { guard: 'ofThisAttempt', actions: 'recordExit' },
        PIPELINE_SPAWN_FAILED: { actions: 'recordSpawnFailure' },
        PIPELINE_EMPTY: 'stopped',
        RUN_LOST: 'stopped',
      },
    },
    succeeded: { type: 'final' },
    failed: { type: 'final' },
    gaveUp: { type: 'final', entry: 'logGiveUp' },
    stopped: { type: 'final' },
  },
});
