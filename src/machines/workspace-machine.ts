import { and } from 'xstate';
import { initialWorkspaceContext } from './workspace-context.js';
import { shareDoneEventLookup } from './done-event-candidates.js';
import { workspaceSetup } from './workspace-setup.js';

// A workspace: a group of supervised commands with a lifetime. It decides when to stop
// (asked to, or its TTL ran out), how (SIGTERM, then SIGKILL once the grace is over) and
// when it is done (the host reports that no process of its groups is left).

export type { WorkspaceContext, WorkspaceInput } from './workspace-context.js';

export const workspaceMachine = shareDoneEventLookup(workspaceSetup.createMachine({
  id: 'workspace',
  context: ({ input }) => initialWorkspaceContext(input),
  initial: 'created',
  on: {
    // Command children speak to the host through their workspace.
    HOST_REQUEST: { actions: 'relay' },
    'xstate.done.actor.*': { actions: ['forgetCommand', 'judgeWaiting'] },
    FAULT: { actions: 'throwFault' },
  },
  states: {
    created: {
      on: { START: { target: 'running', actions: 'start' } },
    },
    running: {
      always: { guard: 'ttlOver', target: 'reaping', actions: 'noteTtlExpiry' },
      after: { ttl: { guard: 'hasTtl', target: 'reaping', actions: 'noteTtlExpiry' } },
      on: {
        RUN: { actions: 'spawnCommand' },
        MEMBER: [
          // Most reports (up, ready, an exit) change nothing here: no failure to judge, nobody waiting.
          { guard: 'memberChangesNothing' },
          { guard: and(['memberFailing', 'exceedsIntensity', 'escalates']), target: 'reaping', actions: ['noteFailure', 'logGiveUp', 'noteEscalation'] },
          { guard: and(['memberFailing', 'exceedsIntensity']), actions: ['noteFailure', 'logGiveUp', 'stopMembers'] },
          { guard: 'memberFailing', actions: ['noteFailure', 'restartSiblings', 'allowRelaunch', 'judgeWaiting'] },
          { actions: ['allowRelaunch', 'judgeWaiting'] },
        ],
        RUN_PIPELINE: { actions: 'spawnPipeline' },
        QUOTA_BREACH: [
          { guard: 'quotaKills', target: 'reaping', actions: 'noteQuotaStop' },
          { actions: 'logBreach' },
        ],
        // Restored from a snapshot: the TTL is armed again for what is left of it.
        RESUME: { target: 'running', reenter: true, actions: ['stamp', 'resumeChildren'] },
        // Nothing to reap (the host says so, and it never started a command): stopped at once,
        // with no signal to ask for and no GROUPS_EMPTY to wait for.
        // With no grace, `terminating` would only hand over to `killing` in the same step.
        STOP: [
          { guard: 'nothingToReap', target: 'stopped', actions: ['noteStop', 'noteStopped'] },
          { guard: 'noGrace', target: 'reaping.killing', actions: 'noteStop' },
          { target: 'reaping', actions: 'noteStop' },
        ],
      },
    },
    reaping: {
      entry: 'stopCommands',
      initial: 'terminating',
      states: {
        terminating: {
          entry: 'terminateGroups',
          always: { guard: 'graceOver', target: 'killing' },
          after: { grace: 'killing' },
          on: {
            // A second stop may shorten the grace, never lengthen it; once killing, it changes nothing.
            STOP: { guard: 'shortensGrace', target: 'terminating', reenter: true, actions: 'noteStop' },
            RESUME: { target: 'terminating', reenter: true, actions: 'stamp' },
          },
        },
        killing: { entry: 'killGroups' },
      },
      on: {
        GROUPS_EMPTY: { target: 'stopped', actions: 'noteStopped' },
      },
    },
    stopped: { type: 'final' },
  },
}));
