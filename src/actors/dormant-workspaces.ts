import { createActor } from 'xstate';
import type { ActorSnapshot, PlainValue } from '../protocol/actor-records.js';
import type { FromWorker } from '../protocol/worker-messages.js';
import type { workspaceMachine } from '../machines/workspace-machine.js';
import { ownFacts, type StartedWorkspaces, type StartFacts } from '../machines/workspace-start.js';
import { toActorSnapshot } from './inspection-records.js';
import { NO_CHILDREN, type PersistedDeltas } from './persisted-deltas.js';

// A plain new workspace (workspace-start.ts) that nothing has been told since it was created
// has no XState actor yet: it is held as its own facts, and its actor is made from its START
// snapshot when the first event for it arrives (or an inspector opens). Until then it holds no
// timer, no child and runs nothing, so there is nothing an actor would do. What the main thread
// is told of it is what an actor started from that snapshot tells: the same snapshot message as
// it is created, the same persisted message at the end of the turn. XState's actor (its system,
// mailbox, restored snapshot) was most of an actor thread's CPU and heap for each of 10,000 idle
// workspaces, and most of what V8 compiled and collected while they were made.

type WorkspaceMachine = typeof workspaceMachine;

const SAMPLE: StartFacts = { id: 'shuma.dormant.id', label: 'shuma.dormant.label', at: 1 };

/** What an actor started from the START snapshot tells the main thread, worked out once per thread. */
interface Told {
  /** Its snapshot message's snapshot, the sample's facts in it. */
  snapshot: ActorSnapshot;
  /** Its persisted message's snapshot: no context (the main thread's mirror holds it), no children. */
  persisted: PlainValue;
}

export class DormantWorkspaces {
  private readonly held = new Map<string, StartFacts>();
  /** Held ones made this turn: their persisted message leaves at the end of it. */
  private readonly unpersisted = new Set<string>();
  private told: Told | null | undefined;

  constructor(
    private readonly machine: WorkspaceMachine,
    private readonly started: StartedWorkspaces,
    private readonly persisted: PersistedDeltas,
    private readonly send: (message: FromWorker) => void,
    /** Asks for a flush at the end of the turn; the flush calls `sendPersisted`. */
    private readonly requestFlush: () => void,
  ) {}

  get size(): number {
    return this.held.size;
  }

  /**
   * Holds a plain new workspace without an actor and tells the main thread what its actor's
   * start would; false when this machine's plain workspaces cannot start from a snapshot.
   */
  hold(facts: StartFacts): boolean {
    if (this.told === undefined) this.told = this.learn();
    if (this.told === null) return false;
    this.held.set(facts.id, facts);
    this.unpersisted.add(facts.id);
    this.requestFlush();
    const { snapshot } = this.told;
    // Its own facts are strings and numbers: plain as they are.
    this.send({ type: 'snapshot', wsId: facts.id, snapshot: { ...snapshot, context: { ...snapshot.context, ...(ownFacts(facts) as Record<string, PlainValue>) } } });
    return true;
  }

  /** Called as the channel flushes (WorkerActors.sendPersisted). */
  sendPersisted(): void {
    if (this.unpersisted.size === 0) return;
    const persisted = this.told!.persisted;
    for (const wsId of this.unpersisted) this.send({ type: 'persisted', wsId, snapshot: persisted, children: NO_CHILDREN, mirroredContext: true });
    this.unpersisted.clear();
  }

  /**
   * The workspace's facts, no longer held (its actor is about to be made); `unpersisted`: its
   * persisted message has not left yet, and its actor's must.
   */
  take(wsId: string): { facts: StartFacts; unpersisted: boolean } | undefined {
    const facts = this.held.get(wsId);
    if (!facts) return undefined;
    this.held.delete(wsId);
    return { facts, unpersisted: this.unpersisted.delete(wsId) };
  }

  /** The facts of one held, still held. */
  factsOf(wsId: string): StartFacts | undefined {
    return this.held.get(wsId);
  }

  ids(): string[] {
    return [...this.held.keys()];
  }

  forget(wsId: string): void {
    this.held.delete(wsId);
    this.unpersisted.delete(wsId);
  }

  /**
   * Told from an actor restored from a sample's START snapshot, as the worker restores one; null
   * when its persisted form would hold more than its state (persisted-deltas.ts sends that
   * state alone only for a string value, no children, no history).
   */
  private learn(): Told | null {
    const snapshot = this.started.snapshotFor(SAMPLE);
    if (!snapshot) return null;
    const actor = createActor(this.machine, { id: SAMPLE.id, input: { id: SAMPLE.id, label: SAMPLE.label, ttlMs: null, supervision: null, groups: null }, snapshot });
    const live = actor.getSnapshot();
    if (typeof live.value !== 'string' || !isEmpty(live.children) || !isEmpty(live.historyValue)) return null;
    return { snapshot: toActorSnapshot(live), persisted: this.persisted.bare(actor, live) };
  }
}

const isEmpty = (value: unknown) => value === undefined || value === null || Object.keys(value).length === 0;
