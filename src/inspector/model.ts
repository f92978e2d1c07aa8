import { pendingTimers } from '../machines/pending-timers.js';
import { groupsGivenUp } from '../machines/group-supervisors.js';
import type { ActorSnapshot, InspectionRecord, PendingTimer, PlainValue, StateValue } from '../protocol/actor-records.js';

// What the inspector knows between two records: every actor's latest state (live ones, and a
// bounded number of ended ones so that a page still shows how they ended), and a bounded ring
// of the latest records for the pages that connect later. Plain data only: it is what the
// page receives as JSON.

/** One actor as the page lists it. */
export interface ActorView {
  /** The actor's id: a workspace id, or the key of a command or pipeline. */
  id: string;
  /** The workspace whose actor tree holds it (its own id for a workspace). */
  rootId: string;
  /** 'workspace' | 'command' | 'pipeline'. */
  machine: string;
  label: string;
  value: StateValue;
  /** The state value as text: `backoff`, `reaping.terminating`. */
  state: string;
  status: ActorSnapshot['status'];
  /** Pending timers as absolute deadlines on the runtime's clock. */
  timers: PendingTimer[];
  /** A few facts from the context for the list: restarts, pid, attempt… */
  facts: Record<string, string | number | null>;
  /** Runtime-clock ms of the latest change seen. */
  since: number;
  /** False once the actor, or its workspace, ended. */
  live: boolean;
}

/** `{ reaping: 'terminating' }` → `reaping.terminating`; parallel regions joined with `, `. */
export function stateText(value: StateValue): string {
  if (typeof value === 'string') return value;
  return Object.entries(value)
    .map(([key, child]) => {
      const inner = stateText(child);
      return inner === '' ? key : `${key}.${inner}`;
    })
    .join(', ');
}

const FACT_FIELDS: Record<string, string[]> = {
  workspace: ['commandsStarted', 'stopReason', 'quotaBreach'],
  command: ['restarts', 'pid', 'runId', 'stopReason'],
  pipeline: ['attempt', 'restarts', 'stopReason'],
};

function factsOf(machine: string, context: { [key: string]: PlainValue }): Record<string, string | number | null> {
  const facts: Record<string, string | number | null> = {};
  for (const field of FACT_FIELDS[machine] ?? []) {
    const value = context[field];
    if (typeof value === 'string' || typeof value === 'number') facts[field] = value;
  }
  if (machine === 'workspace') {
    const gaveUp = groupsGivenUp(context);
    if (gaveUp.length > 0) facts.gaveUp = gaveUp.join('; ');
  }
  const exit = context.lastExit as { status?: unknown } | null | undefined;
  if (machine === 'command' && exit && typeof exit.status === 'number') facts.lastExit = exit.status;
  return facts;
}

/** The latest state of every actor seen; ended actors beyond `keepEnded` are forgotten, oldest first. */
export class ActorTable {
  private readonly views = new Map<string, ActorView>();
  /** The latest snapshot of each actor, for the detail panel (its whole context). */
  private readonly snapshots = new Map<string, ActorSnapshot>();
  private ended = 0;

  constructor(private readonly keepEnded: number) {}

  get size(): number {
    return this.views.size;
  }

  get(id: string): ActorView | undefined {
    return this.views.get(id);
  }

  snapshotOf(id: string): ActorSnapshot | undefined {
    return this.snapshots.get(id);
  }

  all(): ActorView[] {
    return [...this.views.values()];
  }

  /** Applies one record; returns the ids of the actors whose view changed. */
  apply(record: InspectionRecord): string[] {
    if (record.kind === 'actor') {
      if (this.views.has(record.actorId)) return [];
      this.put({
        id: record.actorId,
        rootId: record.rootId,
        machine: record.machine ?? 'unknown',
        label: '',
        value: '',
        state: '',
        status: 'active',
        timers: [],
        facts: {},
        since: record.at,
        live: true,
      });
      return [record.actorId];
    }
    if (record.kind !== 'snapshot' || !record.snapshot) return [];
    const changed = this.update(record.actorId, record.rootId, record.machine ?? 'unknown', record.snapshot, record.timers, record.at);
    // A workspace that ended takes its whole tree with it.
    if (record.machine === 'workspace' && record.snapshot.status !== 'active') changed.push(...this.endTree(record.rootId));
    return changed;
  }

  /** Sets an actor's view from a snapshot (from a record, or from the runtime's mirror). */
  update(id: string, rootId: string, machine: string, snapshot: ActorSnapshot, timers: PendingTimer[] | undefined, at: number): string[] {
    const previous = this.views.get(id);
    const label = typeof snapshot.context.label === 'string' ? snapshot.context.label : (previous?.label ?? '');
    const status = snapshot.status;
    this.put({
      id,
      rootId,
      machine,
      label,
      value: snapshot.value,
      state: stateText(snapshot.value),
      status,
      timers: timers ?? pendingTimers(snapshot),
      facts: factsOf(machine, snapshot.context),
      since: previous && previous.state === stateText(snapshot.value) ? previous.since : at,
      live: status === 'active' && (previous?.live ?? true),
    });
    this.snapshots.set(id, snapshot);
    return [id];
  }

  /** Whether the table knows the actor. */
  has(id: string): boolean {
    return this.views.has(id);
  }

  /** Marks every actor of a workspace's tree ended (the workspace is gone). */
  endTree(rootId: string): string[] {
    const changed: string[] = [];
    for (const view of this.views.values()) {
      if (view.rootId !== rootId || !view.live) continue;
      changed.push(view.id);
      this.put({ ...view, live: false, timers: [] });
    }
    return changed;
  }

  private put(view: ActorView): void {
    const previous = this.views.get(view.id);
    if (previous && !previous.live) this.ended--;
    if (!view.live) {
      this.ended++;
      // Re-inserted at the end: the oldest ended actors are forgotten first.
      this.views.delete(view.id);
    }
    this.views.set(view.id, view);
    this.trim();
  }

  private trim(): void {
    if (this.ended <= this.keepEnded) return;
    for (const view of this.views.values()) {
      if (this.ended <= this.keepEnded) break;
      if (view.live) continue;
      this.views.delete(view.id);
      this.snapshots.delete(view.id);
      this.ended--;
    }
  }
}

/** The latest `capacity` items, oldest first. */
export class Ring<T> {
  private readonly items: (T | undefined)[];
  private start = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    this.items = new Array<T | undefined>(capacity);
  }

  push(item: T): void {
    if (this.capacity === 0) return;
    if (this.count < this.capacity) {
      this.items[(this.start + this.count++) % this.capacity] = item;
    } else {
      this.items[this.start] = item;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  get size(): number {
    return this.count;
  }

  toArray(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.items[(this.start + i) % this.capacity] as T);
    return out;
  }
}
