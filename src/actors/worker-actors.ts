import { createActor, type Actor, type AnyActorRef, type InspectionEvent, type SimulatedClock, type Snapshot } from 'xstate';
import { serializeError } from '../protocol/errors.js';
import type { FromWorker, ToWorker } from '../protocol/messages.js';
import type { SupervisionSpec } from '../protocol/supervision-spec.js';
import { newGroup } from '../machines/group.js';
import { workspaceMachine } from '../machines/workspace-machine.js';
import { machineIdOf, toActorSnapshot, toInspectionRecord } from './inspection-records.js';
import { toPersistable } from './plain.js';

type WorkspaceActor = Actor<typeof workspaceMachine>;

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

  constructor(
    private readonly send: (message: FromWorker) => void,
    private readonly clock: SimulatedClock | undefined,
    private readonly now: () => number,
    /** Asks for a flush at the end of the turn; the flush calls `sendPersisted` first. */
    private readonly requestFlush: () => void,
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
      case 'workspaceEvent':
        this.workspaces.get(message.wsId)?.send(message.event);
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
        this.workspaces.delete(message.wsId);
        return;
      case 'inspect':
        this.inspecting = message.enabled;
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
    const actor = createActor(workspaceMachine, {
      id: wsId,
      input: { id: wsId, label, ttlMs, supervision, groups },
      ...(restored ? { snapshot: withGroup(restored) as Snapshot<unknown> } : {}),
      ...(this.clock ? { clock: this.clock } : {}),
      inspect: (event) => this.onInspection(wsId, event),
    });
    this.workspaces.set(wsId, actor);
    actor.on('*', (request) => this.send({ type: 'hostRequest', request }));
    let last: SnapshotParts | undefined;
    let lastPersisted: SnapshotParts & { children: unknown } | undefined;
    actor.subscribe({
      next: (snapshot) => {
        // Relaying a child's request to the host is an event of the workspace that changes
        // nothing of its own: its children then say what changed, each for itself.
        if (!lastPersisted || lastPersisted.children !== snapshot.children || changedForObservers(lastPersisted, snapshot)) {
          lastPersisted = snapshot;
          this.markUnpersisted(wsId);
        }
        if (!changedForObservers(last, snapshot)) return;
        last = snapshot;
        this.send({ type: 'snapshot', wsId, snapshot: toActorSnapshot(snapshot) });
      },
      // Without an error observer XState rethrows, and the whole worker would go down.
      error: (error) => {
        this.send({ type: 'actorError', wsId, error: serializeError(error) });
        this.send({ type: 'snapshot', wsId, snapshot: toActorSnapshot(actor.getSnapshot()) });
      },
    });
    actor.start();
    if (!restored) actor.send({ type: 'START', at });
  }

  /** Timers are re-armed; children whose processes are gone are told so. */
  private afterRestore(wsId: string, at: number, lostKeys: readonly string[]): void {
    const actor = this.workspaces.get(wsId);
    if (!actor) return;
    const children = actor.getSnapshot().children as Record<string, AnyActorRef | undefined>;
    // Children restored from the snapshot may predate our inspection hook: watch them here.
    for (const child of Object.values(children)) {
      const machine = child ? machineIdOf(child) : null;
      if (child && (machine === 'command' || machine === 'pipeline')) this.watchChild(wsId, child, machine);
    }
    actor.send({ type: 'RESUME', at });
    for (const key of lostKeys) children[key]?.send({ type: 'RUN_LOST', at });
  }

  private markUnpersisted(wsId: string): void {
    this.unpersisted.add(wsId);
    this.requestFlush();
  }

  private markChildUnpersisted(wsId: string, key: string): void {
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
      if (this.unpersisted.has(wsId)) continue; // the whole snapshot carries them
      const actor = this.workspaces.get(wsId);
      if (!actor || actor.getSnapshot().status !== 'active') continue;
      const children = actor.getSnapshot().children as Record<string, AnyActorRef | undefined>;
      for (const key of keys) {
        const child = children[key];
        if (!child) {
          // Gone from the tree: only a whole snapshot says so.
          this.unpersisted.add(wsId);
          break;
        }
        this.send({ type: 'persistedChild', wsId, key, snapshot: toPersistable(child.getPersistedSnapshot()) });
      }
    }
    this.unpersistedChildren.clear();
    for (const wsId of this.unpersisted) {
      const actor = this.workspaces.get(wsId);
      if (!actor || actor.getSnapshot().status !== 'active') continue;
      this.send({ type: 'persisted', wsId, snapshot: toPersistable(actor.getPersistedSnapshot()) });
    }
    this.unpersisted.clear();
  }

  private onInspection(wsId: string, event: InspectionEvent): void {
    const ref = event.actorRef as AnyActorRef;
    if (event.type === '@xstate.actor') {
      const machine = machineIdOf(ref);
      if (machine === 'command' || machine === 'pipeline') this.watchChild(wsId, ref, machine);
    }
    if (this.inspecting) this.send({ type: 'inspection', record: toInspectionRecord(wsId, event, this.now()) });
  }

  private readonly watched = new WeakSet<AnyActorRef>();

  private watchChild(wsId: string, ref: AnyActorRef, machine: 'command' | 'pipeline'): void {
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
