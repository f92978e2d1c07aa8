import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { ShumaError } from '../protocol/errors.js';
import type { InspectionRecord } from '../protocol/messages.js';
import type { RuntimeView } from '../host/runtime-view.js';
import { checkInspectorOptions, DEFAULT_INSPECTOR_LIMITS, type InspectorLimits, type InspectorOptions } from './inspector-options.js';
import { ActorTable, Ring, type ActorView } from './model.js';
import { detailOf } from './actor-detail.js';
import { hostAllowed, PageFiles } from './page-files.js';

export { checkInspectorOptions, DEFAULT_INSPECTOR_LIMITS, isLoopback, type InspectorLimits, type InspectorOptions } from './inspector-options.js';

// The local inspector: one HTTP server on a loopback address serving a page (plain HTML, JS
// and CSS from src/inspector/public, no CDN) and a WebSocket that streams the runtime's
// inspection records to it, batched. Every client has a bounded send buffer: a client that
// cannot keep up loses what it cannot take and is sent the whole state again once it has
// drained, so a slow page never makes the runtime hold more than a bound per client.

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

/** Starts the inspector's server; `close()` stops it and lets go of every page. */
export async function startInspector(
  source: InspectorSource,
  options: InspectorOptions,
  limits: Partial<InspectorLimits> = {},
): Promise<InspectorServer> {
  const { port, host } = checkInspectorOptions(options);
  const server = new InspectorServer(source, { ...DEFAULT_INSPECTOR_LIMITS, ...limits });
  await server.listen(port, host);
  return server;
}


export class InspectorServer {
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly clients = new Set<Client>();
  private readonly table: ActorTable;
  private readonly ring: Ring<InspectionRecord>;
  private pending: InspectionRecord[] = [];
  private readonly changed = new Set<string>();
  private flushTimer: NodeJS.Timeout | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly pages = new PageFiles();
  private closed: Promise<void> | null = null;
  private address = '';

  constructor(
    private readonly source: InspectorSource,
    private readonly limits: InspectorLimits,
  ) {
    this.table = new ActorTable(limits.keepEndedActors);
    this.ring = new Ring(limits.ringRecords);
    this.http = createServer((req, res) => this.serve(req, res));
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false });
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    // Neither the server, nor a page's connection, nor the timers keep alive a process that
    // forgot to shut its runtime down: the runtime's own threads decide that.
    this.http.on('connection', (socket: Socket) => socket.unref());
  }

  /** The page's address, e.g. `http://127.0.0.1:43117/`. */
  get url(): string {
    return this.address;
  }

  async listen(port: number, host: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        this.http.off('listening', onListening);
        const code = error.code ?? 'error';
        reject(
          new ShumaError(
            'INVALID_ARGUMENT',
            code === 'EADDRINUSE'
              ? `options.inspector.port ${port} on ${host} is taken: pick another port, or 0 for any free one`
              : `the inspector could not listen on ${host}:${port} (${code}: ${error.message})`,
            { field: 'inspector.port', cause: code },
          ),
        );
      };
      const onListening = () => {
        this.http.off('error', onError);
        // From now on an error is one failed accept (EMFILE when descriptors run out): that page
        // cannot connect, the server and the runtime go on. Unheard, it would end the process.
        this.http.on('error', (error: NodeJS.ErrnoException) =>
          this.source.logger.warn({ err: { code: error.code, message: error.message } }, 'the inspector could not accept a connection'),
        );
        resolve();
      };
      this.http.once('error', onError);
      this.http.once('listening', onListening);
      this.http.listen(port, host);
    });
    const bound = this.http.address();
    const actualPort = typeof bound === 'object' && bound !== null ? bound.port : port;
    this.address = `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}/`;
    this.unsubscribe = this.source.addInspector((record) => this.receive(record));
    this.tickTimer = setInterval(() => this.tick(), this.limits.tickMs);
    this.tickTimer.unref();
    this.http.unref();
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

  // ── HTTP ──────────────────────────────────────────────────────────────────────

  private serve(req: IncomingMessage, res: ServerResponse): void {
    this.pages.serve(req, res, () => {
      this.checkInLive();
      return JSON.stringify({ now: this.source.clock.now(), actors: this.table.all() });
    });
  }

  // ── WebSocket ───────────────────────────────────────────────────────────────────

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (status: string) => {
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    const path = new URL(req.url ?? '/', 'http://inspector').pathname;
    if (path !== '/ws') return refuse('404 Not Found');
    // A page of another site may open a WebSocket to localhost: only this page's own origin may.
    const origin = req.headers.origin;
    if (!hostAllowed(req) || (origin !== undefined && origin !== `http://${req.headers.host}`)) return refuse('403 Forbidden');
    if (this.clients.size >= this.limits.maxClients || this.closed) return refuse('503 Service Unavailable');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.connect(ws));
  }

  private connect(socket: WebSocket): void {
    (socket as unknown as { _socket?: Socket })._socket?.setNoDelay(true);
    const client: Client = { socket, selected: null, waitingForResync: false, droppedRecords: 0, resyncs: 0 };
    this.clients.add(client);
    socket.on('message', (data: RawData) => this.onClientMessage(client, data));
    socket.on('close', () => this.clients.delete(client));
    socket.on('error', () => socket.terminate());
    this.sendState(client);
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

  /** Stops listening, closes every page's socket, lets go of the runtime. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.unsubscribe?.();
      this.unsubscribe = null;
      if (this.tickTimer) clearInterval(this.tickTimer);
      if (this.flushTimer) {
        clearTimeout(this.flushTimer);
        this.flush();
      }
      for (const client of this.clients) client.socket.close(1001, 'the runtime shut down');
      const closedHttp = new Promise<void>((resolve) => this.http.close(() => resolve()));
      // Sockets that do not answer the close in time are cut.
      const cut = setTimeout(() => {
        for (const client of this.clients) client.socket.terminate();
        this.http.closeAllConnections();
      }, 500);
      await closedHttp;
      clearTimeout(cut);
      this.wss.close();
      this.clients.clear();
    })();
    return this.closed;
  }
}
