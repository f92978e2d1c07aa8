import { createActor, type Actor, type AnyActorRef, type SimulatedClock, type Snapshot } from 'xstate';
import { serializeError } from '../protocol/errors.js';
import type { FromWorker, ToWorker } from '../protocol/worker-messages.js';
import type { WorkspaceEvent } from '../protocol/machine-events.js';
import type { SupervisionSpec } from '../protocol/supervision-spec.js';
import { workspaceMachine } from '../machines/workspace-machine.js';
import { StartedWorkspaces, type StartFacts } from '../machines/workspace-start.js';
import { StoppedWorkspaces, type StoppedEnd } from '../machines/workspace-shutdown.js';
import type { ActorSnapshot, PlainValue } from '../protocol/actor-records.js';
import { announcingWorkspaceMachine, type ChildMachine } from './announced-children.js';
import { DormantWorkspaces } from './dormant-workspaces.js';
import { InspectionObservers } from './inspection-observers.js';
import { machineIdOf, toActorSnapshot } from './inspection-records.js';
import { changedForObservers, type SnapshotParts } from './observed-changes.js';
import { PersistedDeltas } from './persisted-deltas.js';
import { withCommandsNested, withGroup } from './restored-snapshot.js';

type WorkspaceActor = Actor<typeof workspaceMachine>;

/** pino's numbers for the levels an actor logs at. */
const LOG_LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/** What a workspace is hosted with besides its facts. */
interface Hosting {
  ttlMs: number | null;
  restored: unknown;
  supervision: SupervisionSpec | null;
  groups: Record<string, SupervisionSpec> | null;
}

/** asGiven: restored, or by START's step; fromStart: plain, from its START snapshot; woken: a dormant one, its start told already. */
type Start = 'asGiven' | 'fromStart' | 'woken';

/**
 * Runs machine actors inside one worker thread and speaks the protocol for them: events
 * in, host requests and snapshots out; persisted snapshots (persisted-deltas.ts) and inspection
 * records (inspection-observers.ts) each by a part of its own. One actor's error is reported
 * and contained: its neighbours in the same thread go on.
 */
export class WorkerActors {
  private readonly workspaces = new Map<string, WorkspaceActor>();
  /** What the main thread's mirror of each workspace holds: its last snapshot sent. */
  private readonly observed = new Map<string, SnapshotParts>();
  private readonly persisted: PersistedDeltas;
  private readonly inspection: InspectionObservers;
  /** Its command and pipeline actors are watched as they start; steps that change nothing skipped while nobody inspects (announced-children.ts). */
  private readonly machine = announcingWorkspaceMachine((wsId, child, machine) => this.watchChild(wsId, child, machine), () => this.skipsQuietSteps && !this.inspection.enabled);
  private readonly watched = new WeakSet<AnyActorRef>();
  /** A plain new workspace starts where the machine's START takes it (workspace-start.ts). */
  private readonly started = new StartedWorkspaces(this.machine);
  /** A shutdown's stop of a workspace still as it started ends it where the STOP step would (workspace-shutdown.ts). */
  private readonly stopped = new StoppedWorkspaces(this.machine, this.started);
  /** The plain copy of each such end, made once. */
  private readonly plainEnds = new WeakMap<StoppedEnd, ActorSnapshot>();
  /** Plain new workspaces told nothing since: no actor until something is (dormant-workspaces.ts). */
  private readonly dormant: DormantWorkspaces;

  constructor(
    private readonly send: (message: FromWorker) => void,
    private readonly clock: SimulatedClock | undefined,
    now: () => number,
    /** Asks for a flush at the end of the turn; the flush calls `sendPersisted` first. */
    requestFlush: () => void,
    /** Whether the host logs at this level (pino's number): a log request nobody reads is not sent. */
    private readonly logs: (level: number) => boolean = () => true,
    /** False: every workspace gets its actor as it is created (the path test/dormant-workspaces.test.ts holds the dormant one to). */
    private readonly holdsDormant = true,
    /** False: every step is taken as while someone inspects (the path test/quiet-steps.test.ts holds the quiet one to). */
    private readonly skipsQuietSteps = true,
  ) {
    this.persisted = new PersistedDeltas(send, requestFlush);
    this.inspection = new InspectionObservers(send, now);
    this.dormant = new DormantWorkspaces(this.machine, this.started, this.persisted, send, requestFlush);
  }

  /** Workspaces hosted here, an actor made for each or not yet. */
  get size(): number {
    return this.workspaces.size + this.dormant.size;
  }

  receive(message: ToWorker): void {
    switch (message.type) {
      case 'createWorkspace':
        this.createWorkspace(message.wsId, message.label, message.ttlMs, message.at, null, message.supervision ?? null, message.groups ?? null);
        return;
      case 'restoreWorkspace':
        this.createWorkspace(message.wsId, message.label, message.ttlMs, message.at, message.snapshot);
        this.afterRestore(message.wsId, message.at, message.lostKeys);
        return;
      case 'workspaceEvent':
        this.tellWorkspace(message.wsId, message.event);
        return;
      case 'workspacesEvent':
        for (const wsId of message.wsIds) {
          // One actor's failure is its own: the others of the message are still told.
          try {
            if (!this.stoppedAsStarted(wsId, message.event)) this.tellWorkspace(wsId, message.event);
          } catch (error) {
            this.receiveFailed(error, { type: 'workspaceEvent', wsId, event: message.event });
          }
        }
        return;
      case 'childEvent': {
        const children = this.workspaces.get(message.wsId)?.getSnapshot().children as
          | Record<string, AnyActorRef | undefined>
          | undefined;
        const child = children?.[message.key];
        child?.send(message.event);
        return;
      }
      case 'release':
        this.workspaces.get(message.wsId)?.stop();
        this.forget(message.wsId);
        return;
      case 'inspect':
        // The inspector sees every workspace's actor, as it would had each been made at creation.
        if (message.enabled) for (const wsId of this.dormant.ids()) this.wake(wsId);
        this.inspection.setEnabled(message.enabled, this.workspaces);
        return;
      case 'clock':
        // Only a simulated clock is ever moved by hand.
        this.clock?.set(message.now);
        this.send({ type: 'clockAck', seq: message.seq });
        return;
    }
  }

  private tellWorkspace(wsId: string, event: WorkspaceEvent): void {
    const actor = this.workspaces.get(wsId) ?? this.wake(wsId);
    if (!actor) return;
    // A shutdown's stop comes after the runtime froze its state (host/core/shutdown.ts), and a
    // closing runtime re-hosts nothing: what the workspace would persist from here on is thrown away.
    if (event.type === 'STOP' && event.reason === 'shutdown') this.persisted.freeze(wsId);
    actor.send(event);
  }

  /**
   * A stop told to many workspaces at once (a shutdown's) of one still as it started: it ends
   * where its STOP step would take it, told to the main thread as that step would tell it (its
   * last snapshot, nothing persisted: the runtime froze its state first), without the step.
   * While someone inspects, the step is taken, for the inspector to see it.
   */
  private stoppedAsStarted(wsId: string, event: WorkspaceEvent): boolean {
    if (event.type !== 'STOP' || this.inspection.enabled) return false;
    const actor = this.workspaces.get(wsId);
    const facts = actor ? null : this.dormant.factsOf(wsId);
    const stopped = actor ? this.stopped.endOf(actor.getSnapshot(), event) : facts ? this.stopped.endWith(facts, event) : null;
    if (!stopped) return false;
    // Let go as it is: it holds no timer, no child, nothing that runs (its end reached by the
    // step would have let it go the same); XState's stop() would take a step of its own.
    this.forget(wsId);
    let plain = this.plainEnds.get(stopped.end);
    if (!plain) this.plainEnds.set(stopped.end, (plain = toActorSnapshot(stopped.end.template)));
    // Its own facts are strings and numbers: plain as they are.
    this.send({ type: 'snapshot', wsId, snapshot: { ...plain, context: { ...plain.context, ...(stopped.facts as Record<string, PlainValue>) } } });
    return true;
  }

  /**
   * A message whose handling threw (a bug, or a malformed message): told to the host, never a
   * crash of the thread, which would take every co-hosted actor down with it. The workspace it
   * was for may have missed an event: it is failed (the host kills its processes and reports it).
   */
  receiveFailed(error: unknown, message: ToWorker): void {
    const serialized = serializeError(error);
    if ('wsId' in message) {
      this.send({ type: 'actorError', wsId: message.wsId, error: { ...serialized, message: `handling '${message.type}' failed: ${serialized.message}` } });
      return;
    }
    this.send({ type: 'hostRequest', request: { type: 'log', level: 'error', msg: `an actor thread failed to handle '${message.type}'`, fields: { error: `${serialized.name}: ${serialized.message}` } } });
  }

  /**
   * Called by the channel as it flushes, so a persisted snapshot always travels in the same
   * batch as the snapshot messages of the same change, never after them.
   */
  sendPersisted(): void {
    this.dormant.sendPersisted();
    this.persisted.sendChanged(this.workspaces, (wsId) => this.observed.get(wsId)?.context);
  }

  private createWorkspace(
    wsId: string,
    label: string,
    ttlMs: number | null,
    at: number,
    restored: unknown,
    supervision: SupervisionSpec | null = null,
    groups: Record<string, SupervisionSpec> | null = null,
  ): void {
    // While someone inspects, the START step is taken, for the inspector to see it.
    const plain = !restored && ttlMs === null && supervision === null && groups === null && !this.inspection.enabled;
    this.dormant.forget(wsId);
    if (plain && this.holdsDormant && !this.workspaces.has(wsId) && this.dormant.hold({ id: wsId, label, at })) return;
    this.host({ id: wsId, label, at }, { ttlMs, restored, supervision, groups }, plain ? 'fromStart' : 'asGiven');
  }

  /** The actor of a dormant workspace, made from its START snapshot: what it would tell the main thread as it starts has been told. */
  private wake(wsId: string): WorkspaceActor | undefined {
    const taken = this.dormant.take(wsId);
    if (!taken) return undefined;
    const actor = this.host(taken.facts, { ttlMs: null, restored: null, supervision: null, groups: null }, 'woken');
    if (taken.unpersisted) this.persisted.workspaceChanged(wsId);
    return actor;
  }

  private host(facts: StartFacts, { ttlMs, restored, supervision, groups }: Hosting, start: Start): WorkspaceActor {
    const { id: wsId, label, at } = facts;
    const told = start === 'woken';
    const started = start === 'asGiven' ? null : this.started.snapshotFor(facts);
    const snapshot = restored ? (withCommandsNested(withGroup(restored)) as Snapshot<unknown>) : started;
    const actor = createActor(this.machine, {
      id: wsId,
      input: { id: wsId, label, ttlMs, supervision, groups },
      ...(snapshot ? { snapshot } : {}),
      ...(this.clock ? { clock: this.clock } : {}),
      ...this.inspection.atCreation(wsId),
    });
    this.workspaces.set(wsId, actor);
    this.observed.delete(wsId);
    if (!told) this.persisted.hostedAfresh(wsId);
    actor.on('*', (request) => {
      if (request.type === 'log' && !this.logs(LOG_LEVELS[request.level])) return;
      this.send({ type: 'hostRequest', request });
    });
    let lastPersisted: SnapshotParts & { children: unknown } | undefined;
    // A new workspace's first state, `created`, lasts until the START below: nobody on the main
    // thread can see it (createWorkspace resolves on `running`), so it is not sent.
    let unseen = !snapshot;
    let quiet = told;
    actor.subscribe({
      next: (snapshot) => {
        if (quiet) {
          lastPersisted = snapshot;
          this.observed.set(wsId, snapshot);
          return;
        }
        // Relaying a child's request to the host is an event of the workspace that changes
        // nothing of its own: its children then say what changed, each for itself.
        if (!lastPersisted || lastPersisted.children !== snapshot.children || changedForObservers(lastPersisted, snapshot)) {
          lastPersisted = snapshot;
          this.persisted.workspaceChanged(wsId);
        }
        if (unseen || !changedForObservers(this.observed.get(wsId), snapshot)) return;
        this.observed.set(wsId, snapshot);
        this.send({ type: 'snapshot', wsId, snapshot: toActorSnapshot(snapshot) });
        // Its end is told: the host has nothing more to say to it, and needs no message to let it go.
        if (snapshot.status === 'done') this.forget(wsId);
      },
      // Without an error observer XState rethrows, and the whole worker would go down.
      error: (error) => {
        this.send({ type: 'actorError', wsId, error: serializeError(error) });
        this.send({ type: 'snapshot', wsId, snapshot: toActorSnapshot(actor.getSnapshot()) });
      },
    });
    actor.start();
    unseen = false;
    quiet = false;
    if (!snapshot) actor.send({ type: 'START', at });
    return actor;
  }

  /** The workspace is gone from this thread (it ended, or the host let go of one that failed). */
  private forget(wsId: string): void {
    this.dormant.forget(wsId);
    this.inspection.forget(wsId);
    this.workspaces.delete(wsId);
    this.observed.delete(wsId);
    this.persisted.forget(wsId);
  }

  /** Timers are re-armed; children whose processes are gone are told so. */
  private afterRestore(wsId: string, at: number, lostKeys: readonly string[]): void {
    const actor = this.workspaces.get(wsId);
    if (!actor) return;
    const children = actor.getSnapshot().children as Record<string, AnyActorRef | undefined>;
    // Restored children were watched as they started (announced-children.ts); this is only a net.
    for (const child of Object.values(children)) {
      const machine = child ? machineIdOf(child) : null;
      if (child && (machine === 'command' || machine === 'pipeline')) this.watchChild(wsId, child, machine);
    }
    actor.send({ type: 'RESUME', at });
    for (const key of lostKeys) children[key]?.send({ type: 'RUN_LOST', at });
  }

  private watchChild(wsId: string, ref: AnyActorRef, machine: ChildMachine): void {
    if (this.watched.has(ref)) return;
    this.watched.add(ref);
    const key = ref.id;
    let last: SnapshotParts | undefined;
    ref.subscribe({
      next: (snapshot: SnapshotParts) => {
        this.persisted.childChanged(wsId, key);
        if (!changedForObservers(last, snapshot)) return;
        last = snapshot;
        this.send({ type: 'childSnapshot', wsId, key, machine, snapshot: toActorSnapshot(snapshot) });
      },
      error: (error) => this.send({ type: 'actorError', wsId, error: serializeError(error) }),
    });
  }
}
