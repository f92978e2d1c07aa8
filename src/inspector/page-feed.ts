import { WebSocket, type RawData } from 'ws';
import type { RuntimeView } from '../host/runtime-view.js';
import type { InspectionRecord } from '../protocol/actor-records.js';
import { detailOf } from './actor-detail.js';
import type { InspectorLimits } from './inspector-options.js';
import { ActorTable, Ring, type ActorView } from './model.js';

// What the connected pages are sent: the runtime's inspection records go into the actor table
// and the ring at once, and out to the pages in batches. Every page has a bounded send buffer:
// one that cannot keep up loses what it cannot take and is sent the whole state again once it
// has drained, so a slow page never makes the runtime hold more than a bound per page. The
// server (server.ts) only accepts pages and hands them here.

/** What the inspector reads of a runtime. */
export type InspectorSource = Pick<RuntimeView, 'clock' | 'registry' | 'statsHistory' | 'why' | 'addInspector' | 'table' | 'logger'>;

/** What the server tells about each connected page (for tests and for the curious). */
export interface ClientStats {
  bufferedBytes: number;
  /** Records the page did not get because it was too slow: a resync followed or will follow. */
  droppedRecords: number;
  resyncs: number;
  waitingForResync: boolean;
}

interface Client {
  socket: WebSocket;
  selected: string | null;
  waitingForResync: boolean;
  droppedRecords: number;
  resyncs: number;
}

type ClientMessage = { type: 'select'; id: string | null };

export class PageFeed {
  private readonly clients = new Set<Client>();
  private readonly table: ActorTable;
  private readonly ring: Ring<InspectionRecord>;
  private pending: InspectionRecord[] = [];
  private readonly changed = new Set<string>();
  private flushTimer: NodeJS.Timeout | null = null;
  private tickTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly source: InspectorSource,
    private readonly limits: InspectorLimits,
  ) {
    this.table = new ActorTable(limits.keepEndedActors);
    this.ring = new Ring(limits.ringRecords);
  }

  get size(): number {
    return this.clients.size;
  }

  /** Per page: what it has waiting in its socket, what it missed. */
  clientStats(): ClientStats[] {
    return [...this.clients].map((c) => ({
      bufferedBytes: c.socket.bufferedAmount,
      droppedRecords: c.droppedRecords,
      resyncs: c.resyncs,
      waitingForResync: c.waitingForResync,
    }));
  }

  /** Records waiting for the next batch (never more than `maxPendingRecords`). */
  get pendingRecords(): number {
    return this.pending.length;
  }

  /** The clock's tick to every page, every `tickMs`, so the pages' countdowns stay fresh. */
  startTicking(): void {
    this.tickTimer = setInterval(() => this.tick(), this.limits.tickMs);
    this.tickTimer.unref();
  }

  /** No more ticks; what is pending goes out now. */
  stop(): void {
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flush();
    }
  }

  // ── pages in and out ───────────────────────────────────────────────────────────

  /** A page connected: it is sent the whole state, then batches. */
  connect(socket: WebSocket): void {
    const client: Client = { socket, selected: null, waitingForResync: false, droppedRecords: 0, resyncs: 0 };
    this.clients.add(client);
    socket.on('message', (data: RawData) => this.onClientMessage(client, data));
    socket.on('close', () => this.clients.delete(client));
    socket.on('error', () => socket.terminate());
    this.sendState(client);
  }

  /** Asks every page to close (`1001`: going away). */
  closeAll(): void {
    for (const client of this.clients) client.socket.close(1001, 'the runtime shut down');
  }

  /** Ends the sockets of the pages that did not answer the close. */
  cutAll(): void {
    for (const client of this.clients) client.socket.terminate();
  }

  forgetAll(): void {
    this.clients.clear();
  }

  private onClientMessage(client: Client, data: RawData): void {
    let message: ClientMessage;
    try {
      message = JSON.parse(data.toString()) as ClientMessage;
    } catch {
      return;
    }
    if (message?.type === 'select') {
      client.selected = typeof message.id === 'string' ? message.id : null;
      this.sendDetail(client);
    }
  }

  // ── records in ─────────────────────────────────────────────────────────────────

  /** One inspection record from the runtime: the table and the ring now, the pages soon. */
  receive(record: InspectionRecord): void {
    for (const id of this.table.apply(record)) this.changed.add(id);
    this.ring.push(record);
    if (this.clients.size === 0) {
      this.changed.clear();
      return;
    }
    if (this.pending.length >= this.limits.maxPendingRecords) {
      // The event loop is not getting to the flush: rather than queue without limit, every
      // page is sent the whole state (table and ring, both bounded) once it can take it.
      for (const client of this.clients) this.markBehind(client, this.pending.length + 1);
      this.pending = [];
      this.changed.clear();
    } else {
      this.pending.push(record);
    }
    if (this.flushTimer === null) {
      this.flushTimer = setTimeout(() => this.flush(), this.limits.flushMs);
      this.flushTimer.unref();
    }
  }

  private flush(): void {
    this.flushTimer = null;
    const records = this.pending;
    this.pending = [];
    const actors = [...this.changed].map((id) => this.table.get(id)).filter((v): v is ActorView => v !== undefined);
    this.changed.clear();
    if (records.length === 0 && actors.length === 0) return;
    // Serialised once, whatever the number of pages.
    const message = JSON.stringify({ type: 'update', now: this.source.clock.now(), actors, records });
    const touched = new Set(actors.map((a) => a.id));
    for (const client of this.clients) {
      if (client.waitingForResync) {
        client.droppedRecords += records.length;
        this.resyncIfDrained(client);
        continue;
      }
      if (client.socket.bufferedAmount > this.limits.highWaterBytes) {
        this.markBehind(client, records.length);
        continue;
      }
      this.send(client, message);
      if (client.selected !== null && touched.has(client.selected)) this.sendDetail(client);
    }
  }

  private markBehind(client: Client, dropped: number): void {
    client.waitingForResync = true;
    client.droppedRecords += dropped;
  }

  private resyncIfDrained(client: Client): void {
    if (client.socket.bufferedAmount > this.limits.lowWaterBytes) return;
    client.waitingForResync = false;
    client.resyncs++;
    this.sendState(client);
  }

  private tick(): void {
    const message = JSON.stringify({ type: 'tick', now: this.source.clock.now() });
    for (const client of this.clients) {
      if (client.waitingForResync) {
        this.resyncIfDrained(client);
        continue;
      }
      if (client.socket.bufferedAmount > this.limits.highWaterBytes) continue;
      this.send(client, message);
      if (client.selected !== null) this.sendDetail(client);
    }
  }

  // ── what a page is sent ────────────────────────────────────────────────────────

  private send(client: Client, message: string): void {
    if (client.socket.readyState !== WebSocket.OPEN) return;
    client.socket.send(message, (error) => {
      if (error) client.socket.terminate();
    });
  }

  /** The whole state: every actor the table knows (the runtime's live ones checked in), the ring. */
  private sendState(client: Client): void {
    this.checkInLive();
    this.send(
      client,
      JSON.stringify({
        type: 'state',
        now: this.source.clock.now(),
        manual: this.source.clock.manual === true,
        actors: this.table.all(),
        records: this.ring.toArray(),
        dropped: client.droppedRecords,
      }),
    );
    if (client.selected !== null) this.sendDetail(client);
  }

  /** Every actor, for the page's plain HTTP read of the state. */
  actorsJson(): string {
    this.checkInLive();
    return JSON.stringify({ now: this.source.clock.now(), actors: this.table.all() });
  }

  /**
   * Actors the records did not tell of (none, normally: the inspector subscribes before the
   * first workspace exists) come from the runtime's own mirror; actors of a workspace that is
   * gone are ended.
   */
  private checkInLive(): void {
    const at = this.source.clock.now();
    const liveRoots = new Set<string>();
    for (const ws of this.source.registry.all()) {
      liveRoots.add(ws.id);
      if (!this.table.has(ws.id)) this.table.update(ws.id, ws.id, 'workspace', ws.snapshot, undefined, at);
      for (const command of ws.commands.values()) {
        if (command.snapshot && !this.table.has(command.key)) this.table.update(command.key, ws.id, 'command', command.snapshot, undefined, at);
      }
      for (const pipeline of ws.pipelines.values()) {
        if (pipeline.snapshot && !this.table.has(pipeline.id)) this.table.update(pipeline.id, ws.id, 'pipeline', pipeline.snapshot, undefined, at);
      }
    }
    for (const view of this.table.all()) if (view.live && !liveRoots.has(view.rootId)) this.table.endTree(view.rootId);
  }

  /** For the selected actor: a workspace's stats history, a command's or pipeline's why() trail, its context. */
  private sendDetail(client: Client): void {
    const id = client.selected;
    if (id === null || client.socket.bufferedAmount > this.limits.highWaterBytes) return;
    const detail = detailOf(this.table, this.source, id);
    if (detail) this.send(client, JSON.stringify(detail));
  }
}
