import type { AnyActorRef } from 'xstate';
import type { MemberPhase } from './group-events.js';
import { verdict, type GroupContext, type MemberView } from './group.js';

// The group's view of its members, read from their own snapshots: a member's phase lives in its
// machine only (no copy in the workspace's context that could disagree with it).

interface ParentLike {
  getSnapshot(): { children: Record<string, AnyActorRef | undefined> };
}

interface CommandSnapshotLike {
  value: unknown;
  status: string;
  context: { runs?: number; lastExit?: { status: number } | null };
}

/** The phase a command machine's state stands for. */
export function phaseOf(snapshot: CommandSnapshotLike): MemberPhase {
  const value = snapshot.value;
  switch (value) {
    case 'waiting':
      return 'waiting';
    case 'up':
      return 'up';
    case 'running':
      return 'ready';
    case 'exited':
      return snapshot.context.lastExit?.status === 0 ? 'succeeded' : 'exited';
    case 'gaveUp':
    case 'failed':
    case 'stopped':
    case 'unmet':
      return value;
    default:
      return 'down';
  }
}

/** A command member's view, or undefined when `key` is no command child (gone, or a pipeline). */
export function memberView(self: ParentLike, key: string): MemberView | undefined {
  const child = self.getSnapshot().children[key];
  // The machine's id says what the child is (a command, or a pipeline, which is no member).
  if (!child || (child as { logic?: { id?: unknown } }).logic?.id !== 'command') return undefined;
  const snapshot = child.getSnapshot() as CommandSnapshotLike;
  const phase = phaseOf(snapshot);
  if (snapshot.status !== 'active' && !isFinalPhase(phase)) return undefined;
  return { phase, started: (snapshot.context.runs ?? 0) > 0 };
}

function isFinalPhase(phase: MemberPhase): boolean {
  return phase === 'succeeded' || phase === 'exited' || phase === 'gaveUp' || phase === 'failed' || phase === 'stopped' || phase === 'unmet';
}

/** Members waiting for their dependencies, each with its verdict (go, wait, or never: why). */
export function waitingMembers(group: GroupContext, self: ParentLike): Array<{ key: string; verdict: true | null | string }> {
  const result: Array<{ key: string; verdict: true | null | string }> = [];
  for (const key of Object.keys(group.deps)) {
    const view = memberView(self, key);
    if (view?.phase !== 'waiting') continue;
    result.push({ key, verdict: verdict(group, key, (k) => memberView(self, k)) });
  }
  return result;
}
