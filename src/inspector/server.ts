import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { ShumaError } from '../protocol/errors.js';
import type { InspectionRecord } from '../protocol/actor-records.js';
import { checkInspectorOptions, DEFAULT_INSPECTOR_LIMITS, type InspectorLimits, type InspectorOptions } from './inspector-options.js';
import { PageFeed, type ClientStats, type InspectorSource } from './page-feed.js';
import { hostAllowed, PageFiles } from './page-files.js';

export { checkInspectorOptions, DEFAULT_INSPECTOR_LIMITS, isLoopback, type InspectorLimits, type InspectorOptions } from './inspector-options.js';
export type { ClientStats, InspectorSource } from './page-feed.js';

// The local inspector: one HTTP server on a loopback address serving a page (plain HTML, JS
// and CSS from src/inspector/public, no CDN) and a WebSocket that streams the runtime's
// inspection records to it. This file listens, refuses what is not this page's own, and
// closes; what each page is sent, batched and bounded, is page-feed.ts.

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
  private readonly feed: PageFeed;
  private unsubscribe: (() => void) | null = null;
  private readonly pages = new PageFiles();
  private closed: Promise<void> | null = null;
  private address = '';

  constructor(
    private readonly source: InspectorSource,
    private readonly limits: InspectorLimits,
  ) {
    this.feed = new PageFeed(source, limits);
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
    this.feed.startTicking();
    this.http.unref();
  }

  /** Per page: what it has waiting in its socket, what it missed. */
  clientStats(): ClientStats[] {
    return this.feed.clientStats();
  }

  /** Records waiting for the next batch (never more than `maxPendingRecords`). */
  get pendingRecords(): number {
    return this.feed.pendingRecords;
  }

  /** One inspection record from the runtime: the table and the ring now, the pages soon. */
  receive(record: InspectionRecord): void {
    this.feed.receive(record);
  }

  // ── HTTP ──────────────────────────────────────────────────────────────────────

  private serve(req: IncomingMessage, res: ServerResponse): void {
    this.pages.serve(req, res, () => this.feed.actorsJson());
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
    if (this.feed.size >= this.limits.maxClients || this.closed) return refuse('503 Service Unavailable');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.connect(ws));
  }

  private connect(socket: WebSocket): void {
    (socket as unknown as { _socket?: Socket })._socket?.setNoDelay(true);
    this.feed.connect(socket);
  }

  /** Stops listening, closes every page's socket, lets go of the runtime. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.unsubscribe?.();
      this.unsubscribe = null;
      this.feed.stop();
      this.feed.closeAll();
      const closedHttp = new Promise<void>((resolve) => this.http.close(() => resolve()));
      // Sockets that do not answer the close in time are cut.
      const cut = setTimeout(() => {
        this.feed.cutAll();
        this.http.closeAllConnections();
      }, 500);
      await closedHttp;
      clearTimeout(cut);
      this.wss.close();
      this.feed.forgetAll();
    })();
    return this.closed;
  }
}
