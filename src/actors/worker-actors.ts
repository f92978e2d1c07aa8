import { createActor, type Actor, type AnyActorRef, type InspectionEvent, type SimulatedClock, type Snapshot, type Subscription } from 'xstate';
import { serializeError } from '../protocol/errors.js';
import type { FromWorker, ToWorker } from '../protocol/worker-messages.js';
import type { SupervisionSpec } from '../protocol/supervision-spec.js';
import { newGroup } from '../machines/group.js';
import { workspaceMachine } from '../machines/workspace-machine.js';
import { isUnarmedDelay } from '../machines/no-timer.js';
import { announcingWorkspaceMachine, type ChildMachine } from './announced-children.js';
import { machineIdOf, toActorSnapshot, toInspectionRecord } from './inspection-records.js';
import { toPersistable } from './plain.js';

type WorkspaceActor = Actor<typeof workspaceMachine>;

/** pino's numbers for the levels an actor logs at. */
const LOG_LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/**
 * Runs machine actors inside one worker thread and speaks the protocol for them: events
 * in, host requests, snapshots and inspection records out. One actor's error is reported
 * and contained: its neighbours in the same thread go on.
 */
export class WorkerActors {
  private readonly workspaces = new Map<string, WorkspaceActor>();
  private inspecting = false;
  /** Workspaces whose own persisted snapshot changed this turn: sent whole, at the end of it. */
  private readonly unpersisted = new Set<string>();
  /**
   * Children whose persisted snapshot changed while their workspace's own did not (a restart
   * cycle, say): only theirs is sent. Walking the whole tree on each change cost O(children)
   * per event and a measured 0.2–0.4 ms of every restart.
   */
  private readonly unpersistedChildren = new Map<string, Set<string>>();
  /**
   * The children whose persisted entry the main thread holds, by workspace: they are not sent
   * again unchanged. A workspace without children has no entry (10,000 idle ones held 10,000 empty sets).
   */
  private readonly sentChildren = new Map<string, Set<string>>();
  /** Workspaces stopped by a shutdown: they persist nothing more. */
  private readonly frozen = new Set<string>();
  /** Its command and pipeline actors are watched as they start (announced-children.ts). */
  private readonly machine = announcingWorkspaceMachine((wsId, child, machine) => this.watchChild(wsId, child, machine));
  /**
   * The workspaces an inspection observer is attached to: while someone inspects, and for the life
   * of those created meanwhile (null: attached at creation, where it sees the actor made).
   */
  private readonly inspected = new Map<string, Subscription | null>();

  constructor(
    private readonly send: (message: FromWorker) => void,
    private readonly clock: SimulatedClock | undefined,
    private readonly now: () => number,
    /** Asks for a flush at the end of the turn; the flush calls `sendPersisted` first. */
    private readonly requestFlush: () => void,
    /** Whether the host logs at this level (pino's number): a log request nobody reads is not sent. */
    private readonly logs: (level: number) => boolean = () => true,
  ) {}

  get size(): number {
    return this.workspaces.size;
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
      case 'workspaceEvent': {
        const actor = this.workspaces.get(message.wsId);
        if (!actor) return;
        // A shutdown's stop comes after the runtime froze its state (host/core/shutdown.ts), and a
        // closing runtime re-hosts nothing: what the workspace would persist from here on is thrown away.
        if (message.event.type === 'STOP' && message.event.reason === 'shutdown') this.frozen.add(message.wsId);
        actor.send(message.event);
        return;
      }
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
        this.inspect(message.enabled);
        return;
      case 'clock':
        // Only a simulated clock is ever moved by hand.
        this.clock?.set(message.now);
        this.send({ type: 'clockAck', seq: message.seq });
        return;
    }
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
    if (this.inspecting) this.inspected.set(wsId, null);
    const actor = createActor(this.machine, {
      id: wsId,
      input: { id: wsId, label, ttlMs, supervision, groups },
      ...(restored ? { snapshot: withGroup(restored) as Snapshot<unknown> } : {}),
      ...(this.clock ? { clock: this.clock } : {}),
      ...(this.inspecting ? { inspect: (event: InspectionEvent) => this.onInspection(wsId, event) } : {}),
    });
    this.workspaces.set(wsId, actor);
    // Hosted afresh (restored, re-hosted): the main thread's next snapshot of it is whole.
    this.sentChildren.delete(wsId);
    actor.on('*', (request) => {
      if (request.type === 'log' && !this.logs(LOG_LEVELS[request.level])) return;
      this.send({ type: 'hostRequest', request });
    });
    let last: SnapshotParts | undefined;
    let lastPersisted: SnapshotParts & { children: unknown } | undefined;
    // A new workspace's first state, `created`, lasts until the START below: nobody on the main
    // thread can see it (createWorkspace resolves on `running`), so it is not sent.
    let unseen = !restored;
    actor.subscribe({
      next: (snapshot) => {
        // Relaying a child's request to the host is an event of the workspace that changes
        // nothing of its own: its children then say what changed, each for itself.
        if (!lastPersisted || lastPersisted.children !== snapshot.children || changedForObservers(lastPersisted, snapshot)) {
          lastPersisted = snapshot;
          this.markUnpersisted(wsId);
        }
        if (unseen || !changedForObservers(last, snapshot)) return;
        last = snapshot;
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
    if (!restored) actor.send({ type: 'START', at });
  }

  /** The workspace is gone from this thread (it ended, or the host let go of one that failed). */
  private forget(wsId: string): void {
    this.inspected.get(wsId)?.unsubscribe();
    this.inspected.delete(wsId);
    this.workspaces.delete(wsId);
    this.sentChildren.delete(wsId);
    this.frozen.delete(wsId);
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

  private markUnpersisted(wsId: string): void {
    if (this.frozen.has(wsId)) return;
    this.unpersisted.add(wsId);
    this.requestFlush();
  }

  private markChildUnpersisted(wsId: string, key: string): void {
    if (this.frozen.has(wsId)) return;
    let keys = this.unpersistedChildren.get(wsId);
    if (!keys) this.unpersistedChildren.set(wsId, (keys = new Set()));
    keys.add(key);
    this.requestFlush();
  }

  /**
   * Called by the channel as it flushes, so a persisted snapshot always travels in the same
   * batch as the snapshot messages of the same change, never after them.
   */
  sendPersisted(): void {
    for (const [wsId, keys] of this.unpersistedChildren) {
      if (this.unpersisted.has(wsId)) continue; // its delta carries them
      const actor = this.workspaces.get(wsId);
      if (!actor || actor.getSnapshot().status !== 'active') continue;
      const children = actor.getSnapshot().children as Record<string, AnyActorRef | undefined>;
      const sent = this.sentChildren.get(wsId);
      for (const key of keys) {
        const child = children[key];
        if (!child || !sent?.has(key)) {
          // Gone from the tree, or not yet on the main thread: only the workspace's own message says so.
          this.unpersisted.add(wsId);
          break;
        }
        this.send({ type: 'persistedChild', wsId, key, snapshot: toPersistable(child.getPersistedSnapshot()) });
      }
    }
    for (const wsId of this.unpersisted) {
      const actor = this.workspaces.get(wsId);
      if (!actor || actor.getSnapshot().status !== 'active') continue;
      this.sendWorkspacePersisted(wsId, actor, this.unpersistedChildren.get(wsId));
    }
    this.unpersistedChildren.clear();
    this.unpersisted.clear();
  }

  /**
   * The workspace's own persisted snapshot, with only the children the main thread lacks or
   * holds an older one of: its children come and go at every run, and the whole tree sent at
   * each (O(children) walked, copied and encoded twice a run) was most of a busy worker's time.
   */
  private sendWorkspacePersisted(wsId: string, actor: WorkspaceActor, changed: ReadonlySet<string> | undefined): void {
    const snapshot = actor.getSnapshot();
    const sent = this.sentChildren.get(wsId);
    const own = actor.logic.getPersistedSnapshot({ ...snapshot, children: {} } as typeof snapshot) as Record<string, unknown>;
    const order: string[] = [];
    const entries: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(snapshot.children as Record<string, AnyActorRef | undefined>)) {
      if (!child) continue;
      order.push(key);
      if (sent?.has(key) && !changed?.has(key)) continue;
      entries[key] = persistedChildEntry(child);
    }
    if (order.length > 0) this.sentChildren.set(wsId, new Set(order));
    else this.sentChildren.delete(wsId);
    this.send({ type: 'persisted', wsId, snapshot: toPersistable({ ...own, children: entries }), children: order });
  }

  /** Inspection on: every workspace's steps are recorded from now on; off: observers let go. */
  private inspect(enabled: boolean): void {
    this.inspecting = enabled;
    for (const [wsId, actor] of this.workspaces) {
      if (enabled && !this.inspected.has(wsId)) {
        this.inspected.set(wsId, actor.system.inspect((event) => this.onInspection(wsId, event)));
      }
      const subscription = this.inspected.get(wsId);
      if (!enabled && subscription) {
        subscription.unsubscribe();
        this.inspected.delete(wsId);
      }
    }
  }

  private onInspection(wsId: string, event: InspectionEvent): void {
    // One attached at creation stays; it records only while someone inspects.
    if (!this.inspecting) return;
    if (event.type === '@xstate.microstep' && isUnarmedDelay(event.event.type, event._transitions.length)) return;
    this.send({ type: 'inspection', record: toInspectionRecord(wsId, event, this.now()) });
  }

  private readonly watched = new WeakSet<AnyActorRef>();

  private watchChild(wsId: string, ref: AnyActorRef, machine: ChildMachine): void {
    if (this.watched.has(ref)) return;
    this.watched.add(ref);
    const key = ref.id;
    let last: SnapshotParts | undefined;
    ref.subscribe({
      next: (snapshot: SnapshotParts) => {
        this.markChildUnpersisted(wsId, key);
        if (!changedForObservers(last, snapshot)) return;
        last = snapshot;
        this.send({ type: 'childSnapshot', wsId, key, machine, snapshot: toActorSnapshot(snapshot) });
      },
      error: (error) => this.send({ type: 'actorError', wsId, error: serializeError(error) }),
    });
  }
}

/** One child as XState's own persisted snapshot of its parent lays it out. */
function persistedChildEntry(child: AnyActorRef): Record<string, unknown> {
  const internals = child as AnyActorRef & { src: unknown; systemId?: string; _syncSnapshot?: unknown };
  return { snapshot: child.getPersistedSnapshot(), src: internals.src, systemId: internals.systemId, syncSnapshot: internals._syncSnapshot };
}

/** A snapshot saved before workspaces had a group context gets an empty one (one_for_one, no intensity). */
function withGroup(restored: unknown): unknown {
  const snapshot = restored as { context?: { group?: unknown } };
  if (!snapshot.context || snapshot.context.group !== undefined) return restored;
  return { ...snapshot, context: { ...snapshot.context, group: newGroup(null) } };
}

interface SnapshotParts {
  value: unknown;
  status: string;
  context: unknown;
}

/**
 * What observers see is value, status and context. XState notifies on every event, also on
 * those that changed only its children (a finished command forgotten) or nothing at all.
 */
function changedForObservers(previous: SnapshotParts | undefined, next: SnapshotParts): boolean {
  if (!previous) return true;
  if (previous.status !== next.status || previous.context !== next.context) return true;
  if (previous.value === next.value) return false;
  return JSON.stringify(previous.value) !== JSON.stringify(next.value);
}
