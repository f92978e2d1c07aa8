import { and, assign, emit, enqueueActions, setup, stopChild } from 'xstate';
import type { HostRequest, HostRequestEvent } from '../protocol/host-requests.js';
import type { WorkspaceEvent } from '../protocol/machine-events.js';
import { DEFAULT_GRACE_MS } from '../protocol/specs.js';
import { commandMachine } from './command-machine.js';
import type { MemberEvent } from './group-events.js';
import { addMember, hasDependencies, withoutForgotten, isDependedOn, noteFailure, restartedWith, stopWaves, supervisorOf } from './group.js';
import { giveUpDetail, isNamedMember, supervisorOfEvent, withFailureNoted } from './group-supervisors.js';
import { memberView, waitingMembers } from './group-view.js';
import { pipelineMachine } from './pipeline-machine.js';
import { stampOf, throwFault, untilDeadline } from './common-actions.js';
import { NO_TIMER } from './no-timer.js';
import { withKey } from './keyed-records.js';
import { relayed } from './quiet-steps.js';
import type { WorkspaceContext, WorkspaceInput } from './workspace-context.js';

// What a workspace actor can do: its guards, actions and delays, by name. Its chart (which of
// them run when) is workspace-machine.ts.

type MachineEvent = WorkspaceEvent | HostRequestEvent | MemberEvent;

export const workspaceSetup = setup({
  types: {
    context: {} as WorkspaceContext,
    events: {} as MachineEvent,
    input: {} as WorkspaceInput,
    emitted: {} as HostRequest,
  },
  actors: { command: commandMachine, pipeline: pipelineMachine },
  delays: {
    // No TTL: no timer (no-timer.ts); its guard, hasTtl, turns the raised event down.
    ttl: ({ context }) => (context.ttlDeadline === null ? NO_TIMER : Math.max(0, context.ttlDeadline - context.stampedAt)),
    // Already over (a stop with no grace): `graceOver` leaves in the same step, no timer needed.
    grace: ({ context }) =>
      context.graceDeadline !== null && context.graceDeadline <= context.stampedAt ? NO_TIMER : untilDeadline(context.graceDeadline, context.stampedAt),
  },
  guards: {
    hasTtl: ({ context }) => context.ttlDeadline !== null,
    // Deadlines already passed (no grace, or a restore after they ran out) act in the same step:
    // a 0 ms timer would wait a turn, or forever on a simulated clock nobody moves.
    graceOver: ({ context }) => context.graceDeadline !== null && context.graceDeadline <= context.stampedAt,
    noGrace: ({ event }) => event.type === 'STOP' && event.graceMs <= 0,
    // The host's word that nothing of its groups is left, and no command of its own it could have started.
    nothingToReap: ({ context, event }) => event.type === 'STOP' && event.groupsEmpty === true && context.commandsStarted === 0,
    ttlOver: ({ context }) => context.ttlDeadline !== null && context.ttlDeadline <= context.stampedAt,
    quotaKills: ({ event }) => event.type === 'QUOTA_BREACH' && event.action === 'kill',
    shortensGrace: ({ context, event }) =>
      event.type === 'STOP' && event.at + event.graceMs < (context.graceDeadline ?? Number.POSITIVE_INFINITY),
    // A member failed and its policy relaunches it: the strategy and the intensity act.
    // Its group (named, or the workspace's own) decides.
    memberFailing: ({ context, event }) => {
      const supervisor = supervisorOfEvent(context.group, event);
      return event.type === 'MEMBER' && event.phase === 'failing' && supervisor !== null && supervisor.gaveUp === null &&
        (supervisor.strategy !== 'one_for_one' || supervisor.intensity !== null);
    },
    // What allowRelaunch and judgeWaiting would do with a report that is no failure, when no member waits for another: nothing.
    memberChangesNothing: ({ context, event }) => event.type === 'MEMBER' && event.phase !== 'failing' && !hasDependencies(context.group),
    exceedsIntensity: ({ context, event }) => event.type === 'MEMBER' && noteFailure(supervisorOfEvent(context.group, event)!, event.at).exceeded !== null,
    escalates: ({ context, event }) => supervisorOfEvent(context.group, event)?.escalate === true,
  },
  actions: {
    start: assign(({ context, event }) => {
      if (event.type !== 'START') return {};
      return {
        createdAt: event.at,
        stampedAt: event.at,
        ttlDeadline: context.ttlMs === null ? null : event.at + context.ttlMs,
      };
    }),
    spawnCommand: enqueueActions(({ context, event, enqueue, self }) => {
      if (event.type !== 'RUN') return;
      const deps = event.deps ?? [];
      const children = self.getSnapshot().children as Record<string, unknown>;
      const group = addMember(withoutForgotten(context.group, (key) => children[key] !== undefined), event.key, event.label, deps, event.group);
      enqueue.spawnChild('command', {
        id: event.key,
        input: {
          key: event.key,
          wsId: context.id,
          label: event.label,
          policy: event.policy,
          at: event.at,
          probe: event.probe ?? null,
          waits: deps.length > 0,
          // Its group's intensity may stop it instead of a relaunch: it waits for the group's word.
          judged: supervisorOf(group, event.key).intensity !== null,
          ...(event.restarts ? { restarts: event.restarts } : {}),
        },
      });
      enqueue.assign({ commandsStarted: context.commandsStarted + 1, group });
    }),
    // Whoever waits for dependencies hears whether they hold now, or never will.
    judgeWaiting: enqueueActions(({ context, enqueue, self }) => {
      if (!hasDependencies(context.group)) return;
      for (const { key, verdict } of waitingMembers(context.group, self)) {
        if (verdict === true) enqueue.sendTo(key, { type: 'DEPENDENCIES_MET', at: context.stampedAt });
        else if (verdict !== null) enqueue.sendTo(key, { type: 'DEPENDENCY_FAILED', at: context.stampedAt, detail: verdict });
      }
    }),
    noteFailure: assign(({ context, event }) => {
      const { key, at } = event as MemberEvent;
      return { stampedAt: at, group: withFailureNoted(context.group, key, at) };
    }),
    // A failure its group did not stop for: the member may relaunch (one judged waits for this).
    allowRelaunch: enqueueActions(({ event, enqueue }) => {
      const { key, at, phase } = event as MemberEvent;
      if (phase === 'failing') enqueue.sendTo(key, { type: 'GROUP_VERDICT', at });
    }),
    restartSiblings: enqueueActions(({ context, event, enqueue, self }) => {
      const { key, at } = event as MemberEvent;
      const supervisor = supervisorOfEvent(context.group, event)!;
      const where = isNamedMember(context.group, key) ? ` in group '${context.group.memberOf![key]}'` : '';
      const cause = `'${context.group.labels[key] ?? key}' failed (${supervisor.strategy}${where})`;
      for (const sibling of restartedWith(context.group, key)) {
        if (memberView(self, sibling)) enqueue.sendTo(sibling, { type: 'GROUP_RESTART', at, cause });
      }
    }),
    // The group gave up: its members stop, as an OTP supervisor terminates its children (each
    // signals its own run, with a stop's grace, as a command stopped alone does). The workspace's
    // own group is the top supervisor: all its children stop, named groups' and pipelines too.
    stopMembers: enqueueActions(({ context, event, enqueue, self }) => {
      const { key } = event as MemberEvent;
      const named = isNamedMember(context.group, key);
      const detail = giveUpDetail(context.group, key);
      for (const child of Object.values(self.getSnapshot().children)) {
        if (!child || child.getSnapshot().status !== 'active') continue;
        if (named && context.group.memberOf?.[child.id] !== context.group.memberOf![key]) continue;
        enqueue.sendTo(child, { type: 'STOP', at: context.stampedAt, reason: 'supervision', detail, graceMs: DEFAULT_GRACE_MS } as const);
      }
    }),
    logGiveUp: emit(({ context, event }): HostRequest => {
      const { key } = event as MemberEvent;
      const supervisor = supervisorOfEvent(context.group, event)!;
      return {
        type: 'log',
        level: 'error',
        msg: `supervision gave up: ${giveUpDetail(context.group, key) ?? ''}`,
        fields: {
          ws: context.id,
          label: context.label,
          group: isNamedMember(context.group, key) ? context.group.memberOf![key]! : null,
          strategy: supervisor.strategy,
          escalate: supervisor.escalate,
        },
      };
    }),
    noteEscalation: assign(({ context, event }) => ({
      stopReason: 'supervision' as const,
      supervisionDetail: giveUpDetail(context.group, (event as MemberEvent).key),
      graceMs: DEFAULT_GRACE_MS,
      graceDeadline: context.stampedAt + DEFAULT_GRACE_MS,
    })),
    spawnPipeline: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'RUN_PIPELINE') return;
      enqueue.spawnChild('pipeline', {
        id: event.key,
        input: {
          id: event.key,
          wsId: context.id,
          label: event.label,
          nodeLabels: event.nodeLabels,
          upstreamLabels: event.upstreamLabels,
          discern: event.discern,
          policy: event.policy,
          at: event.at,
          ...(event.strategy ? { strategy: event.strategy, restartSets: event.restartSets ?? {}, strategyNote: event.strategyNote ?? null } : {}),
        },
      });
    }),
    // Its request, as it is (quiet-steps.ts emits the same when the step is not taken).
    relay: emit(({ event }) => relayed(event)),
    noteStop: assign(({ event }) => {
      if (event.type !== 'STOP') return {};
      return {
        stopReason: event.reason,
        graceMs: event.graceMs,
        stampedAt: event.at,
        graceDeadline: event.at + event.graceMs,
      };
    }),
    noteQuotaStop: assign(({ event }) => {
      if (event.type !== 'QUOTA_BREACH') return {};
      // A quota kill does not wait: grace 0, as the original's Kill.
      return { stopReason: 'quota' as const, quotaBreach: event.message, graceMs: 0, stampedAt: event.at, graceDeadline: event.at };
    }),
    logBreach: emit(({ context, event }): HostRequest => {
      const breach = event as Extract<WorkspaceEvent, { type: 'QUOTA_BREACH' }>;
      return {
        type: 'log',
        level: 'warn',
        msg: `quota breach: ${breach.message}`,
        fields: { ws: context.id, label: context.label, resource: breach.resource, used: breach.used, limit: breach.limit },
        breach: { wsId: context.id, resource: breach.resource },
      };
    }),
    noteTtlExpiry: assign(({ context }) => {
      // When it ran out while the runtime was down, the stop starts now, not in the past.
      const at = Math.max(context.ttlDeadline ?? context.stampedAt, context.stampedAt);
      return { stopReason: 'ttl' as const, graceMs: DEFAULT_GRACE_MS, stampedAt: at, graceDeadline: at + DEFAULT_GRACE_MS };
    }),
    stopCommands: enqueueActions(({ context, enqueue, self }) => {
      for (const child of Object.values(self.getSnapshot().children)) {
        if (child && child.getSnapshot().status === 'active') {
          // A command given a grace would signal its own run at once (a stop of it alone); the
          // workspace signals its commands itself, dependants first. A pipeline needs the grace.
          const command = child.id in context.group.labels;
          enqueue.sendTo(child, {
            type: 'STOP',
            at: context.stampedAt,
            ...(command ? {} : { graceMs: context.graceMs ?? DEFAULT_GRACE_MS }),
            reason: context.stopReason,
            detail: context.stopReason === 'supervision' ? (context.supervisionDetail ?? null) : context.quotaBreach,
          });
        }
      }
    }),
    // With no grace, `killing` sends SIGKILL at once and SIGTERM would only race it.
    terminateGroups: enqueueActions(({ context, enqueue, self }) => {
      if (context.graceMs === 0) return;
      // Dependants end before what they depend on (systemd and process-compose stop in reverse order).
      const live = hasDependencies(context.group) ? context.group.order.filter((key) => memberView(self, key)) : [];
      const waves = live.length > 0 ? stopWaves(context.group, live) : [];
      enqueue.emit({ type: 'signal', wsId: context.id, signal: 'SIGTERM', ...(waves.length > 1 ? { waves } : {}) });
    }),
    killGroups: emit(({ context }): HostRequest => ({ type: 'signal', wsId: context.id, signal: 'SIGKILL' })),
    noteStopped: assign(({ event }) => {
      if (event.type === 'STOP') return { reaped: 0, stoppedAt: event.at, graceDeadline: null, ttlDeadline: null };
      if (event.type !== 'GROUPS_EMPTY') return {};
      return { reaped: event.reaped, stoppedAt: event.at, graceDeadline: null, ttlDeadline: null };
    }),
    // A finished command's actor would otherwise stay among the children for the workspace's life;
    // how it ended stays, for commands that depend on it.
    forgetCommand: enqueueActions(({ context, event, enqueue, self }) => {
      const key = (event as unknown as { actorId: string }).actorId;
      const view = memberView(self, key);
      // Only a dependant waiting for it needs to know (one run later knows it from the main
      // thread's mirror); stopping, nothing starts any more. Otherwise nothing changes here.
      if (view && context.stopReason === null && isDependedOn(context.group, key)) {
        enqueue.assign({ group: { ...context.group, ended: withKey(context.group.ended, key, view.phase) } });
      }
      enqueue(stopChild(key));
    }),
    stamp: assign(({ event }) => stampOf(event)),
    /** Restored children re-arm their own timers, from the same instant. */
    resumeChildren: enqueueActions(({ event, enqueue, self }) => {
      if (event.type !== 'RESUME') return;
      for (const child of Object.values(self.getSnapshot().children)) {
        if (child && child.getSnapshot().status === 'active') enqueue.sendTo(child, { type: 'RESUME', at: event.at });
      }
    }),
    throwFault,
  },
});
