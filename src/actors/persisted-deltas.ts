import type { AnyActorRef, Actor } from 'xstate';
import type { FromWorker } from '../protocol/worker-messages.js';
import type { workspaceMachine } from '../machines/workspace-machine.js';
import { persistedSnapshotOf } from './command-contexts.js';
import { machineIdOf } from './inspection-records.js';
import { toPersistable } from './plain.js';
import type { PlainValue } from '../protocol/actor-records.js';

type WorkspaceActor = Actor<typeof workspaceMachine>;

/**
 * What of each workspace's persisted snapshot the main thread lacks, sent as a delta at the end
 * of the turn: its own part and the children it lacks or holds an older one of. Its children
 * come and go at every run; the whole tree sent at each (O(children) walked, copied and encoded
 * twice a run) was most of a busy worker's time.
 */
export class PersistedDeltas {
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

  /** The persisted snapshot of a workspace with no children, its context left out, by state and status: the same for all. */
  private readonly bareByState = new Map<string, PlainValue>();

  constructor(
    private readonly send: (message: FromWorker) => void,
    /** Asks for a flush at the end of the turn; the flush calls `sendChanged` first. */
    private readonly requestFlush: () => void,
  ) {}

  /** Hosted afresh (created, restored, re-hosted): the main thread's next snapshot of it is whole. */
  hostedAfresh(wsId: string): void {
    this.sentChildren.delete(wsId);
  }

  /** A shutdown froze the runtime's state: what the workspace would persist from here on is thrown away. */
  freeze(wsId: string): void {
    this.frozen.add(wsId);
  }

  forget(wsId: string): void {
    this.sentChildren.delete(wsId);
    this.frozen.delete(wsId);
  }

  workspaceChanged(wsId: string): void {
    if (this.frozen.has(wsId)) return;
    this.unpersisted.add(wsId);
    this.requestFlush();
  }

  childChanged(wsId: string, key: string): void {
    if (this.frozen.has(wsId)) return;
    let keys = this.unpersistedChildren.get(wsId);
    if (!keys) this.unpersistedChildren.set(wsId, (keys = new Set()));
    keys.add(key);
    this.requestFlush();
  }

  /** What changed this turn, sent: a child's entry alone where that says it all, else the workspace's delta. */
  sendChanged(workspaces: ReadonlyMap<string, WorkspaceActor>, observedContextOf: (wsId: string) => unknown): void {
    for (const [wsId, keys] of this.unpersistedChildren) {
      if (this.unpersisted.has(wsId)) continue; // its delta carries them
      const actor = workspaces.get(wsId);
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
        this.send({ type: 'persistedChild', wsId, key, snapshot: toPersistable(persistedSnapshotOf(child, machineIdOf(child))) });
      }
    }
    for (const wsId of this.unpersisted) {
      const actor = workspaces.get(wsId);
      if (!actor || actor.getSnapshot().status !== 'active') continue;
      this.sendWorkspace(wsId, actor, this.unpersistedChildren.get(wsId), observedContextOf(wsId));
    }
    this.unpersistedChildren.clear();
    this.unpersisted.clear();
  }

  /** What a workspace in `snapshot` persists when the main thread's mirror holds its context and it has no children. */
  bare(actor: WorkspaceActor, snapshot: ReturnType<WorkspaceActor['getSnapshot']>): PlainValue {
    const key = `${snapshot.status}\0${snapshot.value as string}`;
    let bare = this.bareByState.get(key);
    if (bare === undefined) {
      const own = actor.logic.getPersistedSnapshot({ ...snapshot, children: {}, context: undefined } as unknown as typeof snapshot) as Record<string, unknown>;
      bare = toPersistable({ ...own, children: {} });
      this.bareByState.set(key, bare);
    }
    return bare;
  }

  /** The workspace's own persisted snapshot, with only the children the main thread lacks or holds an older one of. */
  private sendWorkspace(wsId: string, actor: WorkspaceActor, changed: ReadonlySet<string> | undefined, observedContext: unknown): void {
    const snapshot = actor.getSnapshot();
    const sent = this.sentChildren.get(wsId);
    // The main thread's mirror already holds this very context (its snapshot message went first,
    // in this batch or an earlier one): it is not copied, encoded and decoded a second time.
    const mirrored = snapshot.context === observedContext;
    // Without its context and children, what XState persists of it is its state's name and
    // status alone: made once per state (every new idle workspace sent the same, made anew).
    const bare = mirrored && typeof snapshot.value === 'string' && isEmpty(snapshot.historyValue) ? this.bare(actor, snapshot) : null;
    if (bare && isEmpty(snapshot.children)) {
      this.sentChildren.delete(wsId);
      this.send({ type: 'persisted', wsId, snapshot: bare, children: NO_CHILDREN, mirroredContext: true });
      return;
    }
    const own = bare ?? actor.logic.getPersistedSnapshot({ ...snapshot, children: {}, ...(mirrored ? { context: undefined } : {}) } as typeof snapshot);
    const order: string[] = [];
    // Keyed by child id, a new key at every run: a record without a layout of its own (machines/keyed-records.ts).
    const entries = Object.create(null) as Record<string, unknown>;
    for (const [key, child] of Object.entries(snapshot.children as Record<string, AnyActorRef | undefined>)) {
      if (!child) continue;
      order.push(key);
      if (sent?.has(key) && !changed?.has(key)) continue;
      entries[key] = persistedChildEntry(child);
    }
    if (order.length > 0) this.sentChildren.set(wsId, new Set(order));
    else this.sentChildren.delete(wsId);
    this.send({ type: 'persisted', wsId, snapshot: toPersistable({ ...(own as Record<string, unknown>), children: entries }), children: order, ...(mirrored ? { mirroredContext: true as const } : {}) });
  }
}

/** No children (sent as the list of those the workspace has, which the main thread only reads). */
export const NO_CHILDREN: string[] = Object.freeze([]) as unknown as string[];

const isEmpty = (value: unknown) => value === undefined || value === null || Object.keys(value).length === 0;

/**
 * One child as XState's own persisted snapshot of its parent lays it out. Without a system id
 * the field is left out here rather than dropped by the copy for the wire: a record with an
 * undefined field is copied whole, with all it holds (~2% of an actor thread's time per `ws.run`).
 */
function persistedChildEntry(child: AnyActorRef): Record<string, unknown> {
  const internals = child as AnyActorRef & { src: unknown; systemId?: string; _syncSnapshot?: unknown };
  const snapshot = persistedSnapshotOf(child, internals.src);
  if (internals.systemId === undefined) return { snapshot, src: internals.src, syncSnapshot: internals._syncSnapshot };
  return { snapshot, src: internals.src, systemId: internals.systemId, syncSnapshot: internals._syncSnapshot };
}
