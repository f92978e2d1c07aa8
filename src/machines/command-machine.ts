import { and, not } from 'xstate';
import { initialCommandContext } from './command-context.js';
import { commandSetup } from './command-setup.js';
// One supervised command: every relaunch is a new run (a new process with a new id), the
// restart count and the pending backoff carry over from run to run. The machine decides;
// the host spawns and reports, through the parent workspace actor. What it can do is
// command-setup.ts; what it knows, command-context.ts.

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

export const commandMachine = commandSetup.createMachine({
  id: 'command',
  context: ({ input }) => initialCommandContext(input),
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
    // Restored (a restart, a worker thread that died): the kill grace is armed again, in full
    // (late, never early), and no second SIGTERM is sent.
    ending: {
      entry: 'endRun',
      after: { killGrace: { actions: 'killEndingRun' } },
      on: { ...whileEnding, RESUME: { target: 'ending', reenter: true, actions: 'stamp' } },
    },
    // Restored without its process. One caught starting never ran as far as the snapshot
    // knows (it holds the moment before the spawn): it starts, whatever its policy, as its
    // user ordered. One that ran: a supervised command starts again (not counted as a restart:
    // it did not fail); a one-shot one is over, it may have done its work (docs/reliability.md).
    lost: {
      entry: 'forgetRun',
      always: [{ guard: not('hasRun'), target: 'starting' }, { guard: 'supervised', target: 'restarting' }, { target: 'stopped' }],
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
