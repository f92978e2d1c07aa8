import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { AnyStateMachine } from 'xstate';
import { describeMachine } from '../machines/chart.js';
import { commandMachine } from '../machines/command-machine.js';
import { pipelineMachine } from '../machines/pipeline-machine.js';
import { workspaceMachine } from '../machines/workspace-machine.js';
import { isLoopback } from './inspector-options.js';
import { chartToSvg } from './svg-chart.js';

// The inspector's HTTP side: the page's own files (read once from src/inspector/public, no CDN),
// the machines' charts drawn offline, and the state as JSON — to loopback names only.

const MACHINES: Record<string, AnyStateMachine> = {
  workspace: workspaceMachine,
  command: commandMachine,
  pipeline: pipelineMachine,
};

/** The page's files: served from the sources (dist/src/inspector/ → src/inspector/public/). */
const PUBLIC_DIR = fileURLToPath(new URL('../../../src/inspector/public/', import.meta.url));
const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml; charset=utf-8',
  json: 'application/json; charset=utf-8',
};
// The page's inline SVG carries its own <style>: styles may be inline, scripts may not.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export class PageFiles {
  /** By URL path: '/', '/index.html', '/app.js', and each of the page's modules and styles. */
  private readonly files = new Map<string, { type: string; body: Buffer }>();
  private readonly charts = new Map<string, string>();

  constructor() {
    // Read once: a page never waits on the disk, and a missing file fails the start, not a request.
    for (const name of readdirSync(PUBLIC_DIR)) {
      const type = name.slice(name.lastIndexOf('.') + 1);
      if (!['html', 'js', 'css'].includes(type)) continue;
      this.files.set(`/${name}`, { type, body: readFileSync(PUBLIC_DIR + name) });
    }
    const index = this.files.get('/index.html');
    if (!index) throw new Error(`the inspector's page is missing: ${PUBLIC_DIR}index.html`);
    this.files.set('/', index);
  }

  /** Answers one request; `state()` is the JSON of /api/state. */
  serve(req: IncomingMessage, res: ServerResponse, state: () => string): void {
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
    if (!hostAllowed(req)) return reply(403, 'text', 'the inspector answers loopback addresses only\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'text', 'GET only\n');
    const path = new URL(req.url ?? '/', 'http://inspector').pathname;
    const file = this.files.get(path);
    if (file !== undefined) return reply(200, file.type, file.body);
    const chart = /^\/chart\/([a-z]+)\.svg$/.exec(path);
    if (chart) {
      const svg = this.chart(chart[1]!);
      return svg === null ? reply(404, 'text', `no machine is named ${chart[1]}\n`) : reply(200, 'svg', svg);
    }
    if (path === '/api/state') return reply(200, 'json', state());
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
}

/** Only requests addressed to the loopback name the page was served under (no DNS rebinding). */
export function hostAllowed(req: IncomingMessage): boolean {
  const host = req.headers.host;
  if (typeof host !== 'string') return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
  return isLoopback(name);
}
