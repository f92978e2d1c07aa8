import type { MemberEvent } from './group-events.js';
import { gaveUpGroups, groupNameOf, noteFailure, supervisorOf, withSupervisor, type GroupContext, type Supervisor } from './group.js';

// Which supervisor acts on a member's event (a named group's, or the workspace's own), and how
// it records a failure and says that it gave up.

/** The supervisor of the member an event is about; null for an event about no member. */
export function supervisorOfEvent(group: GroupContext, event: { type: string }): Supervisor | null {
  if (event.type !== 'MEMBER') return null;
  return supervisorOf(group, (event as MemberEvent).key);
}

export function isNamedMember(group: GroupContext, key: string): boolean {
  return groupNameOf(group, key) !== null;
}

/** The failure of `key` at `at` noted by its supervisor; past its intensity, it gave up. */
export function withFailureNoted(group: GroupContext, key: string, at: number): GroupContext {
  const { failures, exceeded } = noteFailure(supervisorOf(group, key), at);
  return withSupervisor(group, key, { failures, gaveUp: exceeded });
}

/**
 * Why the supervisor of `key` gave up, as its members' stop says it: the reason alone for the
 * workspace's own group, `group 'db' gave up: …` for a named one.
 */
export function giveUpDetail(group: GroupContext, key: string): string | null {
  const reason = supervisorOf(group, key).gaveUp;
  const name = groupNameOf(group, key);
  if (reason === null) return null;
  return name === null ? reason : `group '${name}' gave up: ${reason}`;
}

/**
 * From a workspace snapshot's context: each group that gave up, in words (`group 'db' gave up:
 * restart intensity reached: …`); what `ps` and the inspector show beside the workspace.
 */
export function groupsGivenUp(context: unknown): string[] {
  const group = (context as { group?: GroupContext } | null)?.group;
  if (!group) return [];
  return gaveUpGroups(group).map(({ group: name, reason }) => `${name === '' ? "the workspace's group" : `group '${name}'`} gave up: ${reason}`);
}
