import type { DependencyCondition, SupervisionSpec, SupervisionStrategy } from '../protocol/supervision-spec.js';
import { FINAL_PHASES, type MemberPhase } from './group-events.js';
import { onlyKeys, withKey } from './keyed-records.js';

// The commands of a workspace as one supervised group: who waits for whom, whom a failure
// restarts (OTP's one_for_one, one_for_all, rest_for_one) and when the group gives up (OTP's
// intensity). Pure decisions on plain data; the workspace machine acts on them.

export interface MemberDependency {
  key: string;
  label: string;
  condition: DependencyCondition;
  /** How it ended, when it had ended as the dependant was run (its actor may be gone). */
  ended?: MemberPhase;
}

/** One supervisor: the workspace's own (its `supervision`), or a named group of `groups`. */
export interface Supervisor {
  strategy: SupervisionStrategy;
  intensity: { maxRestarts: number; withinMs: number } | null;
  escalate: boolean;
  /** When members failed and were relaunched, within the intensity window. */
  failures: number[];
  /** Why the group gave up (intensity reached); null while it supervises. */
  gaveUp: string | null;
}

/**
 * The workspace's supervisor (the fields it extends Supervisor with: its own members are the
 * commands that name no group) and the membership and dependencies of every command.
 */
export interface GroupContext extends Supervisor {
  /** Named groups (WorkspaceSpec.groups); absent in snapshots saved before groups existed. */
  named?: Record<string, Supervisor>;
  /** Command key → the named group it belongs to; a command in none is the workspace's. */
  memberOf?: Record<string, string>;
  /** Command keys in declaration order (the order of ws.run / runAll). */
  order: string[];
  labels: Record<string, string>;
  deps: Record<string, MemberDependency[]>;
  /** The last phase of members that ended (their actors are gone). */
  ended: Record<string, MemberPhase>;
}

/** What the workspace knows of a live member: its phase and whether it ever started. */
export interface MemberView {
  phase: MemberPhase;
  started: boolean;
}

// Every change makes new objects (the actors' contexts are immutable): a new group's empty
// parts can be one frozen object each, held once by 10,000 idle workspaces, not 10,000 times.
const NO_KEYS: string[] = Object.freeze([]) as unknown as string[];
const NO_TIMES: number[] = Object.freeze([]) as unknown as number[];
const NOTHING = Object.freeze({});

function newSupervisor(spec: SupervisionSpec | null | undefined): Supervisor {
  return {
    strategy: spec?.strategy ?? 'one_for_one',
    intensity: spec?.intensity ?? null,
    escalate: spec?.escalate ?? false,
    failures: NO_TIMES,
    gaveUp: null,
  };
}

export function newGroup(spec: SupervisionSpec | null | undefined, groups?: Record<string, SupervisionSpec> | null): GroupContext {
  const named = groups ? Object.fromEntries(Object.entries(groups).map(([name, group]) => [name, newSupervisor(group)])) : NOTHING;
  return {
    ...newSupervisor(spec),
    ...(Object.keys(named).length > 0 ? { named, memberOf: {} } : {}),
    order: NO_KEYS,
    labels: NOTHING,
    deps: NOTHING,
    ended: NOTHING,
  };
}

export function addMember(group: GroupContext, key: string, label: string, deps: MemberDependency[], groupName?: string): GroupContext {
  return {
    ...group,
    // A command restarted by request after it ended joins again under the same key.
    order: group.order.includes(key) ? group.order : [...group.order, key],
    labels: withKey(group.labels, key, label),
    deps: deps.length > 0 ? withKey(group.deps, key, deps) : group.deps,
    ...(groupName !== undefined && group.named?.[groupName] ? { memberOf: withKey(group.memberOf, key, groupName) } : {}),
  };
}

/** The name of the named group `key` belongs to; null: the workspace's own supervisor. */
export function groupNameOf(group: GroupContext, key: string): string | null {
  const name = group.memberOf?.[key];
  return name !== undefined && group.named?.[name] ? name : null;
}

/** The supervisor that acts when `key` fails. */
export function supervisorOf(group: GroupContext, key: string): Supervisor {
  const name = groupNameOf(group, key);
  return name === null ? group : group.named![name]!;
}

/** `group` with the supervisor of `key` changed. */
export function withSupervisor(group: GroupContext, key: string, change: Partial<Supervisor>): GroupContext {
  const name = groupNameOf(group, key);
  if (name === null) return { ...group, ...change };
  return { ...group, named: { ...group.named, [name]: { ...group.named![name]!, ...change } } };
}

/** The members a supervisor watches over: those of the same named group, or of none. */
export function membersWith(group: GroupContext, key: string): string[] {
  const name = groupNameOf(group, key);
  return group.order.filter((k) => groupNameOf(group, k) === name);
}

/** For people: `group 'db'`, or `the workspace's group` for the commands in no named group. */
export function supervisorName(group: GroupContext, key: string): string {
  const name = groupNameOf(group, key);
  return name === null ? "the workspace's group" : `group '${name}'`;
}

/** Every named group that gave up, with why; the workspace's own under the name ''. */
export function gaveUpGroups(group: GroupContext): Array<{ group: string; strategy: SupervisionStrategy; reason: string }> {
  const result: Array<{ group: string; strategy: SupervisionStrategy; reason: string }> = [];
  if (group.gaveUp !== null) result.push({ group: '', strategy: group.strategy, reason: group.gaveUp });
  for (const [name, sup] of Object.entries(group.named ?? {})) {
    if (sup.gaveUp !== null) result.push({ group: name, strategy: sup.strategy, reason: sup.gaveUp });
  }
  return result;
}

/**
 * The group without the members whose actors ended and were forgotten. Under one_for_one their
 * place in the order and their labels no longer decide anything (the strategy restarts no
 * sibling; stop waves are read from live members), so they go as the next member joins: a
 * long-lived workspace that ran thousands of commands would otherwise carry all of them in
 * every snapshot (measured: O(commands ever run) per run). Their own dependencies stay (a
 * restart by request waits for them again), and so does how they ended for whoever depends on
 * them. The other strategies (of the workspace or of any named group) keep the order whole.
 */
export function withoutForgotten(group: GroupContext, isLive: (key: string) => boolean): GroupContext {
  const named = Object.values(group.named ?? {});
  if (group.strategy !== 'one_for_one' || named.some((s) => s.strategy !== 'one_for_one') || group.order.every(isLive)) return group;
  const order = group.order.filter(isLive);
  // One job at a time: none is left (the empty parts a new group has).
  const labels = order.length === 0 ? NOTHING : onlyKeys(group.labels, order);
  if (!group.memberOf) return { ...group, order: order.length === 0 ? NO_KEYS : order, labels };
  return { ...group, order, labels, memberOf: onlyKeys(group.memberOf, order) };
}

/** A dependency holds now (true), may hold later (null), or never will (a reason). */
export function dependencyHolds(dep: MemberDependency, view: MemberView | undefined): true | null | string {
  // Declared in the same set and not spawned yet (runAll sends them one by one): wait for it.
  if (!view) return null;
  const { phase } = view;
  switch (dep.condition) {
    case 'started':
      if (view.started || phase === 'up' || phase === 'ready') return true;
      break;
    case 'ready':
      if (phase === 'ready') return true;
      break;
    case 'succeeded':
      if (phase === 'succeeded') return true;
      break;
  }
  return FINAL_PHASES.has(phase) ? `'${dep.label}' ${phaseWords(phase)} before it was ${dep.condition}` : null;
}

function phaseWords(phase: MemberPhase): string {
  switch (phase) {
    case 'succeeded':
      return 'exited 0';
    case 'exited':
      return 'exited';
    case 'gaveUp':
      return 'gave up';
    case 'failed':
      return 'could not start';
    case 'unmet':
      return 'never started (its own dependency failed)';
    default:
      return phase;
  }
}

/** For a waiting member: go (true), wait (null), or never (why). */
export function verdict(group: GroupContext, key: string, view: (key: string) => MemberView | undefined): true | null | string {
  let all: true | null = true;
  for (const dep of group.deps[key] ?? []) {
    const holds = dependencyHolds(dep, view(dep.key) ?? endedView(group, dep.key) ?? endedView({ ended: dep.ended ? { [dep.key]: dep.ended } : {} }, dep.key));
    if (typeof holds === 'string') return holds;
    if (holds === null) all = null;
  }
  return all;
}

function endedView(group: Pick<GroupContext, 'ended'>, key: string): MemberView | undefined {
  const phase = group.ended[key];
  return phase ? { phase, started: phase !== 'failed' && phase !== 'unmet' } : undefined;
}

/**
 * The members in supervision order: declaration order, except that a member always comes after
 * what it depends on (a stable topological order; forward references are declared together).
 */
export function supervisionOrder(group: GroupContext): string[] {
  const placed = new Set<string>();
  const result: string[] = [];
  const visit = (key: string, path: Set<string>) => {
    if (placed.has(key) || path.has(key)) return;
    path.add(key);
    for (const dep of group.deps[key] ?? []) if (group.labels[dep.key] !== undefined) visit(dep.key, path);
    path.delete(key);
    placed.add(key);
    result.push(key);
  };
  for (const key of group.order) visit(key, new Set());
  return result;
}

/** Whom a failure of `key` restarts besides itself, by its group's strategy, in supervision order. */
export function restartedWith(group: GroupContext, key: string): string[] {
  const members = new Set(membersWith(group, key));
  const order = supervisionOrder(group).filter((k) => members.has(k));
  switch (supervisorOf(group, key).strategy) {
    case 'one_for_one':
      return [];
    case 'one_for_all':
      return order.filter((k) => k !== key);
    case 'rest_for_one':
      return order.slice(order.indexOf(key) + 1);
  }
}

/** Notes a failure at `at` to a supervisor; says whether its intensity is now exceeded, and how. */
export function noteFailure(supervisor: Supervisor, at: number): { failures: number[]; exceeded: string | null } {
  if (!supervisor.intensity) return { failures: supervisor.failures, exceeded: null };
  const { maxRestarts, withinMs } = supervisor.intensity;
  const failures = [...supervisor.failures.filter((t) => t > at - withinMs), at];
  const exceeded =
    failures.length > maxRestarts
      ? `restart intensity reached: ${failures.length} failures within ${withinMs} ms (at most ${maxRestarts} restarts allowed)`
      : null;
  return { failures, exceeded };
}

/**
 * Stop order: dependants before what they depend on. Waves of keys; each wave may stop once
 * the one before it has ended. Members nobody depends on and without dependencies go first.
 */
export function stopWaves(group: GroupContext, live: readonly string[]): string[][] {
  const alive = new Set(live);
  const dependants = new Map<string, string[]>();
  for (const [key, deps] of Object.entries(group.deps)) {
    for (const dep of deps) dependants.set(dep.key, [...(dependants.get(dep.key) ?? []), key]);
  }
  // Depth of a member = the longest chain of live dependants above it.
  const depth = new Map<string, number>();
  const depthOf = (key: string, path: Set<string>): number => {
    const known = depth.get(key);
    if (known !== undefined) return known;
    if (path.has(key)) return 0;
    path.add(key);
    let d = 0;
    for (const above of dependants.get(key) ?? []) if (alive.has(above)) d = Math.max(d, depthOf(above, path) + 1);
    path.delete(key);
    depth.set(key, d);
    return d;
  };
  const waves: string[][] = [];
  for (const key of live) {
    const d = depthOf(key, new Set());
    (waves[d] ??= []).push(key);
  }
  return waves.filter((wave) => wave !== undefined);
}

export function isDependedOn(group: GroupContext, key: string): boolean {
  return Object.values(group.deps).some((deps) => deps.some((dep) => dep.key === key));
}

/** Whether any member depends on another: only then does the order of a stop matter. */
export function hasDependencies(group: GroupContext): boolean {
  return Object.keys(group.deps).length > 0;
}
