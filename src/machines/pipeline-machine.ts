import { and } from 'xstate';
import { DEFAULT_PIPELINE_GRACE_MS } from './pipeline-context.js';
import { pipelineSetup } from './pipeline-setup.js';

export { pipelineFailed, type NodeExit, type PipelineContext, type PipelineInput } from './pipeline-context.js';

// A pipeline: a graph of commands started together over real pipes and supervised as a
// unit. It ends when all its nodes have ended; if it failed (by its `discern` rule) and its
// policy allows, all of it starts again after a backoff. Never while a node still runs; except
// under rest_for_one (`splicing`): a failed node and its downstream restart while upstream
// nodes run on, the new node spliced into the edge the runtime held (docs/pipeline-strategies.md).
// What it can do is pipeline-setup.ts; what it knows, pipeline-context.ts.

export const pipelineMachine = pipelineSetup.createMachine({
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
          // Restored (a restart, a worker thread that died): the grace armed again for what is
          // left of it; its SIGTERM, the entry of `stopping`, is not sent again.
          on: { RESUME: { target: 'terminating', reenter: true, actions: 'stamp' } },
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
