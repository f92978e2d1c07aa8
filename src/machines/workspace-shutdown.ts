import { createActor } from 'xstate';
import type { StopEvent } from '../protocol/machine-events.js';
import type { workspaceMachine } from './workspace-machine.js';
import { ownFacts, type Persisted, type SnapshotState, type StartFacts, type StartedWorkspaces } from './workspace-start.js';

// Where a plain workspace that never did anything is once it heard a shutdown's STOP: `stopped`,
// with the stop's facts and its own. As for its START (workspace-start.ts), the machine works it
// out for a sample workspace, once per thread and shutdown (the shutdown's STOP is one event for
// all of them, core/stop-all.ts); each workspace still as it started then ends there without
// stepping. The step (XState's transition out of `running` into a final state, the actor's
// completion) was half of an actor thread's time to shut 10,000 idle workspaces down, and its
// garbage a quarter more.

type WorkspaceMachine = typeof workspaceMachine;

const SAMPLE: StartFacts = { id: 'shuma.stop.id', label: 'shuma.stop.label', at: 1 };
const OTHER: StartFacts = { id: 'shuma.stop.other', label: 'shuma.stop.other-label', at: 2 };

interface Learned {
  stop: StopEvent;
  /** Null: the step takes more from the workspace than its own facts, or says something to the host; each takes it itself. */
  end: StoppedEnd | null;
}

/** Where such a workspace ends: the sample's end, with the workspace's own facts where the sample's were carried through. */
export interface StoppedEnd {
  /** The sample workspace's end: one object for every workspace of the same stop. */
  template: Persisted;
  /** The context fields that hold the workspace's own facts (id, label, its creation time). */
  carried: readonly string[];
}

export class StoppedWorkspaces {
  private learned: Learned | undefined;

  constructor(
    private readonly machine: WorkspaceMachine,
    private readonly started: StartedWorkspaces,
  ) {}

  /**
   * Where a workspace now in `current` ends on `stop`, when it is still as it started and the
   * step is one the machine takes alike for any such workspace; null: it takes the step. The
   * step says nothing to the host and arms nothing (checked as it is learned), and a workspace
   * still as it started holds no timer and no child: nothing is left unsaid or running.
   */
  endOf(current: SnapshotState, stop: StopEvent): { end: StoppedEnd; facts: Record<string, unknown> } | null {
    const facts = this.started.untouched(current);
    return facts ? this.endWith(facts, stop) : null;
  }

  /** Where a workspace still as it started, with these facts, ends on `stop` (as `endOf`); for one with no actor yet (actors/dormant-workspaces.ts). */
  endWith(facts: StartFacts, stop: StopEvent): { end: StoppedEnd; facts: Record<string, unknown> } | null {
    const end = this.endFor(stop);
    if (!end) return null;
    const own = ownFacts(facts);
    const carried: Record<string, unknown> = {};
    for (const key of end.carried) carried[key] = own[key];
    return { end, facts: carried };
  }

  /** The snapshot the workspace ends in (what `endOf` says, put together). */
  static snapshotOf(end: StoppedEnd, facts: Record<string, unknown>): Persisted {
    return { ...end.template, context: { ...end.template.context, ...facts } };
  }

  private endFor(stop: StopEvent): StoppedEnd | null {
    const learned = this.learned;
    if (learned && sameStop(learned.stop, stop)) return learned.end;
    this.learned = { stop: { ...stop }, end: this.learn(stop) };
    return this.learned.end;
  }

  private learn(stop: StopEvent): StoppedEnd | null {
    const sample = this.step(SAMPLE, stop);
    const other = this.step(OTHER, stop);
    if (!sample || !other) return null;
    const sampled = ownFacts(SAMPLE);
    const end = { template: sample, carried: Object.keys(sampled).filter((key) => sample.context[key] === sampled[key]) };
    const otherOwn = ownFacts(OTHER);
    const carried = Object.fromEntries(end.carried.map((key) => [key, otherOwn[key]]));
    // The sample's end with the other's own facts carried is the other's end, to the last field.
    return JSON.stringify(StoppedWorkspaces.snapshotOf(end, carried)) === JSON.stringify(other) ? end : null;
  }

  /** A started workspace's end on `stop`, when it ends there in that one step and asks nothing of the host. */
  private step(facts: StartFacts, stop: StopEvent): Persisted | null {
    const snapshot = this.started.snapshotFor(facts);
    if (!snapshot) return null;
    const actor = createActor(this.machine, { input: { id: facts.id, label: facts.label, ttlMs: null, supervision: null, groups: null }, snapshot });
    let said = 0;
    actor.on('*', () => said++);
    actor.subscribe({ error: () => undefined });
    actor.start();
    actor.send({ ...stop });
    const end = actor.getPersistedSnapshot() as unknown as Persisted;
    actor.stop();
    return said === 0 && end.status === 'done' && Object.keys(end.children).length === 0 ? end : null;
  }
}

/** The same event: every field alike (a STOP is flat: numbers and strings). */
function sameStop(a: StopEvent, b: StopEvent): boolean {
  const keys = Object.keys(a) as Array<keyof StopEvent>;
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}
