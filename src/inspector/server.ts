import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIPv4, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { AnyStateMachine } from 'xstate';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { ShumaError } from '../protocol/errors.js';
import type { InspectionRecord } from '../protocol/messages.js';
import type { RunView, RuntimeView } from '../host/runtime-view.js';
import { describeMachine } from '../machines/chart.js';
import { commandMachine } from '../machines/command-machine.js';
import { pipelineMachine } from '../machines/pipeline-machine.js';
import { workspaceMachine } from '../machines/workspace-machine.js';
import { ActorTable, Ring, type ActorView } from './model.js';
import { chartToSvg } from './svg-chart.js';

// The local inspector: one HTTP server on a loopback address serving a page (plain HTML, JS
// and CSS from src/inspector/public, no CDN) and a WebSocket that streams the runtime's
// inspection records to it, batched. Every client has a bounded send buffer: a client that
// cannot keep up loses what it cannot take and is sent the whole state again once it has
// drained, so a slow page never makes the runtime hold more than a bound per client.

export interface InspectorOptions {
  /** TCP port; 0 picks any free one (the runtime's `inspectorUrl` says which). */
  port: number;
  /** A loopback address only: 127.0.0.1 (default), another 127.x.y.z, ::1 or localhost. */
  host?: string;
}

export interface InspectorLimits {
  /** Records kept for pages that connect later (and for resyncs). */
  ringRecords: number;
  /** Ended actors kept in the list after they ended. */
  keepEndedActors: number;
  /** A client whose socket holds more than this many unsent bytes is sent nothing more until it drains. */
  highWaterBytes: number;
  /** …and is sent the whole state again once it holds no more than this. */
  lowWaterBytes: number;
  /** Records waiting for the next batch; past this the batch is dropped and every page resyncs. */
  maxPendingRecords: number;
  /** How long records wait to be sent together. */
  flushMs: number;
  /** Clock ticks, stats and why() refreshes for the selected actor. */
  tickMs: number;
  maxClients: number;
}

export const DEFAULT_INSPECTOR_LIMITS: InspectorLimits = {
  ringRecords: 1000,
  keepEndedActors: 200,
  highWaterBytes: 1024 * 1024,
  lowWaterBytes: 64 * 1024,
  maxPendingRecords: 5000,
  flushMs: 30,
  tickMs: 1000,
  maxClients: 16,
};

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

const MACHINES: Record<string, AnyStateMachine> = {
  workspace: workspaceMachine,
  command: commandMachine,
  pipeline: pipelineMachine,
};

/** The page's files: served from the sources (dist/src/inspector/ → src/inspector/public/). */
const PUBLIC_DIR = fileURLToPath(new URL('../../../src/inspector/public/', import.meta.url));
const PUBLIC_FILES: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/app.js': 'app.js',
  '/style.css': 'style.css',
};
const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml; charset=utf-8',
  json: 'application/json; charset=utf-8',
};
// The page's inline SVG carries its own <style>: styles may be inline, scripts may not.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Whether `host` names this machine's loopback interface. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true;
  return isIPv4(host) && host.startsWith('127.');
}

/** Checks `RuntimeOptions.inspector`; the address to listen on: loopback only. */
export function checkInspectorOptions(value: unknown): { port: number; host: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ShumaError('INVALID_ARGUMENT', 'options.inspector must be an object like { port: 0 } (port 0: any free port)', { field: 'inspector' });
  }
  const known = ['port', 'host'];
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new ShumaError('INVALID_ARGUMENT', `options.inspector.${key} is not an inspector option; known: ${known.join(', ')}`, { field: `inspector.${key}` });
    }
  }
  const { port, host } = value as { port?: unknown; host?: unknown };
  if (typeof port !== 'number' || !Number.isSafeInteger(port) || port < 0 || port > 65535) {
    throw new ShumaError('INVALID_ARGUMENT', `options.inspector.port must be a whole number from 0 to 65535 (0: any free port; got ${JSON.stringify(port)})`, {
      field: 'inspector.port',
    });
  }
  if (host !== undefined && (typeof host !== 'string' || !isLoopback(host))) {
    throw new ShumaError(
      'INVALID_ARGUMENT',
      `options.inspector.host must be a loopback address (127.0.0.1, another 127.x.y.z, ::1 or localhost; got ${JSON.stringify(host)}): the inspector shows every process and is never served to the network`,
      { field: 'inspector.host' },
    );
  }
  // `localhost` may resolve to either family: the inspector binds the IPv4 loopback for it.
  const address = host === undefined || host === 'localhost' ? '127.0.0.1' : host === '[::1]' ? '::1' : host;
  return { port, host: address };
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


/** Bytes of a command's output the page shows: its last screenful or so, not its whole ring. */
const OUTPUT_TAIL_BYTES = 4096;

/**
 * The latest run's output of a command (by its key), or of each node of a pipeline (by the
 * pipeline's id), stdout and stderr apart, as text.
 */
function outputTail(runs: readonly RunView[], id: string, machine: string): Array<{ label: string; stdout: string; stderr: string }> {
  const latest = new Map<string, RunView>();
  for (const run of runs) {
    if (machine === 'pipeline' ? run.pipelineId === id : run.key === id && run.pipelineId === undefined) latest.set(run.label, run);
  }
  return [...latest.values()].map((run) => ({
    label: run.label,
    stdout: run.stdout.tail(OUTPUT_TAIL_BYTES).toString('utf8'),
    stderr: run.stderr.tail(OUTPUT_TAIL_BYTES).toString('utf8'),
  }));
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
  private readonly files = new Map<string, Buffer>();
  private readonly charts = new Map<string, string>();
  private closed: Promise<void> | null = null;
  private address = '';

  constructor(
    private readonly source: InspectorSource,
    private readonly limits: InspectorLimits,
  ) {
    this.table = new ActorTable(limits.keepEndedActors);
    this.ring = new Ring(limits.ringRecords);
    // Read once: a page never waits on the disk, and a missing file fails the start, not a request.
    for (const name of new Set(Object.values(PUBLIC_FILES))) this.files.set(name, readFileSync(PUBLIC_DIR + name));
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
    const view = this.table.get(id);
    if (!view) return;
    const detail: Record<string, unknown> = { type: 'detail', id, now: this.source.clock.now(), context: this.table.snapshotOf(id)?.context ?? null };
    if (view.machine === 'workspace') {
      detail.stats = this.source.statsHistory(id, 60);
    } else {
      detail.why = this.source.why.get(id);
      detail.output = outputTail(this.source.table.ofWorkspace(view.rootId), id, view.machine);
    }
    this.send(client, JSON.stringify(detail));
  }

  // ── HTTP ──────────────────────────────────────────────────────────────────────

  /** Only requests addressed to the loopback name the page was served under (no DNS rebinding). */
  private hostAllowed(req: IncomingMessage): boolean {
    const host = req.headers.host;
    if (typeof host !== 'string') return false;
    const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
    return isLoopback(name);
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    const headers = {
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Content-Security-Policy': CSP,
    };
    const reply = (status: number, type: string, body: string | Buffer) => {
      res.writeHead(status, { ...headers, 'Content-Type': CONTENT_TYPES[type] ?? 'text/plain; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (!this.hostAllowed(req)) return reply(403, 'text', 'the inspector answers loopback addresses only\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'text', 'GET only\n');
    const path = new URL(req.url ?? '/', 'http://inspector').pathname;
    const file = PUBLIC_FILES[path];
    if (file !== undefined) return reply(200, file.slice(file.lastIndexOf('.') + 1), this.files.get(file)!);
    const chart = /^\/chart\/([a-z]+)\.svg$/.exec(path);
    if (chart) {
      const svg = this.chart(chart[1]!);
      return svg === null ? reply(404, 'text', `no machine is named ${chart[1]}\n`) : reply(200, 'svg', svg);
    }
    if (path === '/api/state') {
      this.checkInLive();
      return reply(200, 'json', JSON.stringify({ now: this.source.clock.now(), actors: this.table.all() }));
    }
    if (path === '/favicon.ico') return reply(204, 'text', '');
    return reply(404, 'text', 'not found\n');
  }

  /** A machine's chart, drawn offline, each state's box tagged with its path for highlighting. */
  private chart(machine: string): string | null {
    const definition = MACHINES[machine];
    if (!definition) return null;
    let svg = this.charts.get(machine);
    if (svg === undefined) {
      svg = chartToSvg(describeMachine(definition), {
        title: `${machine} machine`,
        subtitle: 'the current state is highlighted',
        stateIds: true,
      });
      this.charts.set(machine, svg);
    }
    return svg;
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
    if (!this.hostAllowed(req) || (origin !== undefined && origin !== `http://${req.headers.host}`)) return refuse('403 Forbidden');
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
