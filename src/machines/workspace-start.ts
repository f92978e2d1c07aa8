import { createActor, type Snapshot } from 'xstate';
import type { workspaceMachine } from './workspace-machine.js';

// Where a plain new workspace (no TTL, no supervision or groups of its own) is once it has
// heard START: `running`, every deadline unarmed, its own id, label and start time in its
// context. The machine works it out once per thread; each such workspace then starts from
// that snapshot with its own three facts put in, instead of stepping through `created` on
// START again (XState's initial state, the START step and its unarmed TTL event were a third
// of a worker's time to create one of 10,000 idle workspaces).

type WorkspaceMachine = typeof workspaceMachine;

/** A persisted machine snapshot, as XState restores it. */
export interface Persisted {
  value: unknown;
  status: string;
  context: Record<string, unknown>;
  children: Record<string, unknown>;
  [key: string]: unknown;
}

/** What a plain new workspace's START snapshot takes from the workspace itself; all else is the same for every one. */
export interface StartFacts {
  id: string;
  label: string;
  at: number;
}

const SAMPLE: StartFacts = { id: 'shuma.start.id', label: 'shuma.start.label', at: 1 };
const OWN_KEYS: ReadonlySet<string> = new Set(Object.keys(ownFacts(SAMPLE)));

export function ownFacts(facts: StartFacts): Record<string, unknown> {
  return { id: facts.id, label: facts.label, createdAt: facts.at, stampedAt: facts.at };
}

/** What of a live snapshot says where a machine is (XState's own snapshot holds more: its machine, nodes, tags). */
export interface SnapshotState {
  value: unknown;
  status: string;
  context: unknown;
  children: unknown;
  historyValue?: unknown;
}

const isEmpty = (value: unknown) => value === undefined || value === null || Object.keys(value).length === 0;

/** The snapshot the machine reaches from `created` on START, asked of the machine itself. */
export function stepStarted(machine: WorkspaceMachine, facts: StartFacts): Persisted {
  const actor = createActor(machine, { input: { id: facts.id, label: facts.label, ttlMs: null, supervision: null, groups: null } });
  actor.subscribe({ error: () => undefined });
  actor.start();
  actor.send({ type: 'START', at: facts.at });
  const persisted = actor.getPersistedSnapshot() as unknown as Persisted;
  actor.stop();
  return persisted;
}

/**
 * Starts plain new workspaces from the snapshot the machine reached for a sample one. It checks
 * as it is made that the workspace's own facts are all the sample's snapshot holds of it (a
 * machine that took more from its input or START would make it refuse: `null`, the step taken).
 */
export class StartedWorkspaces {
  private template: Persisted | null | undefined;
  /** How many fields the template's context has. */
  private contextKeys = -1;

  constructor(private readonly machine: WorkspaceMachine) {}

  /** The START snapshot of a plain new workspace; null when it must take the step itself. */
  snapshotFor(facts: StartFacts): Snapshot<unknown> | null {
    if (this.template === undefined) this.template = this.learn();
    if (this.template === null) return null;
    return { ...this.template, context: { ...this.template.context, ...ownFacts(facts) } } as unknown as Snapshot<unknown>;
  }

  /**
   * The workspace's own facts when `snapshot` is still the START snapshot it was started from
   * (nothing since changed it: a context is replaced on every change, never changed in place);
   * null when anything differs, or when plain workspaces take the START step themselves.
   */
  untouched(snapshot: SnapshotState): StartFacts | null {
    if (this.template === undefined) this.template = this.learn();
    const template = this.template;
    if (template === null || snapshot.status !== template.status || snapshot.value !== template.value) return null;
    if (!isEmpty(snapshot.children) || !isEmpty(snapshot.historyValue)) return null;
    const context = snapshot.context as Record<string, unknown>;
    let keys = 0;
    for (const key in context) {
      keys++;
      if (!OWN_KEYS.has(key) && context[key] !== template.context[key]) return null;
    }
    const { id, label, createdAt, stampedAt } = context;
    if (keys !== this.contextKeys || typeof id !== 'string' || typeof label !== 'string' || typeof createdAt !== 'number' || stampedAt !== createdAt) return null;
    return { id, label, at: createdAt };
  }

  private learn(): Persisted | null {
    const sample = stepStarted(this.machine, SAMPLE);
    const other = stepStarted(this.machine, { id: 'shuma.start.other', label: 'shuma.start.other-label', at: 2 });
    const own = ownFacts(SAMPLE);
    const context = { ...sample.context, ...own };
    // Every field but the workspace's own is the same for any workspace, and the own ones are where expected.
    const same = JSON.stringify({ ...sample, context }) === JSON.stringify({ ...other, context: { ...other.context, ...own } });
    const placed = Object.entries(ownFacts({ id: 'shuma.start.other', label: 'shuma.start.other-label', at: 2 })).every(([key, value]) => other.context[key] === value);
    if (!same || !placed || Object.keys(sample.children).length > 0) return null;
    this.contextKeys = Object.keys(sample.context).length;
    return deepFreeze(sample);
  }
}

/** Shared by every workspace started from it until its first change (contexts are replaced, never changed in place). */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}
