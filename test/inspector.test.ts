import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { WebSocket } from 'ws';
import { createRuntime, type InspectionRecord } from '../src/index.js';
import { viewOf } from '../src/host/runtime-view.js';
import { startInspector, type InspectorServer } from '../src/inspector/server.js';
import { startRuntime, stateOf, waitFor } from './helpers.js';

// The local inspector: its address rules, what it serves, its bound on slow pages, and the
// page itself in a real browser (Debian's chromium driven by playwright-core).
//
// The browser test saves a screenshot of the page: to docs/inspector.png when SHUMA_SCREENSHOT=1
// (`SHUMA_SCREENSHOT=1 node --test dist/test/inspector.test.js` refreshes the README's picture),
// otherwise to a temporary directory, so that a test run leaves the work tree as it was.

// What the functions run inside the page use of the DOM (the project's lib has no DOM types).
declare const document: {
  querySelector(selector: string): { textContent: string | null; getAttribute(name: string): string | null } | null;
  querySelectorAll(selector: string): ArrayLike<{ dataset: Record<string, string | undefined> }>;
};

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A GET to the inspector, with any Host header (fetch would not let us forge one). */
function get(url: string, headers: Record<string, string> = {}): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

function wsUrl(httpUrl: string): string {
  return `${httpUrl.replace(/^http/, 'ws')}ws`;
}

/** Opens a WebSocket and resolves with it and its message stream once the first `state` arrived. */
async function openClient(httpUrl: string): Promise<{ socket: WebSocket; messages: Array<Record<string, unknown>> }> {
  const socket = new WebSocket(wsUrl(httpUrl));
  const messages: Array<Record<string, unknown>> = [];
  socket.on('message', (data) => messages.push(JSON.parse(data.toString()) as Record<string, unknown>));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  await until(() => messages.some((m) => m.type === 'state'), 'the first state message');
  return { socket, messages };
}

/** Polls a condition of this process's own state (not the page's: the browser test waits on the DOM). */
async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; !condition(); delay = Math.min(delay * 2, 50)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Every live process below this one: the test's children and theirs (chromium's helpers, commands). */
function descendants(): Array<{ pid: number; cmd: string }> {
  const parents = new Map<number, number>();
  const commands = new Map<number, string>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z' || fields[0] === 'X') continue;
      parents.set(Number(name), Number(fields[1]));
      commands.set(Number(name), readFileSync(`/proc/${name}/cmdline`, 'latin1').replace(/\0/g, ' ').trim());
    } catch {
      // gone between the listing and the read
    }
  }
  const found: Array<{ pid: number; cmd: string }> = [];
  for (const pid of parents.keys()) {
    for (let at = parents.get(pid), hops = 0; at !== undefined && at > 1 && hops < 64; at = parents.get(at), hops++) {
      if (at === process.pid) {
        found.push({ pid, cmd: commands.get(pid) ?? '' });
        break;
      }
    }
  }
  return found;
}

/** Processes anywhere whose command line names `marker` (a chromium helper that left its parent). */
function processesNaming(marker: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1').includes(marker)) pids.push(Number(name));
    } catch {
      // gone
    }
  }
  return pids;
}

function snapshotRecord(actorId: string, padding: number): InspectionRecord {
  return {
    kind: 'snapshot',
    at: Date.now(),
    rootId: 'root',
    actorId,
    machine: 'command',
    snapshot: { value: 'running', status: 'active', context: { label: actorId, padding: 'x'.repeat(padding) } },
    timers: [],
  };
}

describe('inspector: address and options', () => {
  test('refuses any address but a loopback one, before a thread starts', async () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', 'example.com', '', '127.0.0.1.example.com']) {
      await assert.rejects(createRuntime({ inspector: { port: 0, host } }), (e: Error & { code?: string; field?: string }) => {
        assert.equal(e.code, 'INVALID_ARGUMENT', host);
        assert.equal(e.field, 'inspector.host');
        assert.match(e.message, /loopback/);
        return true;
      });
    }
    for (const inspector of [{ port: -1 }, { port: 65536 }, { port: 1.5 }, { port: '80' }, {}, { port: 0, hots: 'x' }, null, 8080]) {
      await assert.rejects(createRuntime({ inspector: inspector as never }), { code: 'INVALID_ARGUMENT' });
    }
  });

  test('no inspector unless asked; localhost and other 127.x addresses serve on IPv4 loopback', async () => {
    const plain = await startRuntime();
    assert.equal(plain.inspectorUrl, null);
    const local = await startRuntime({ inspector: { port: 0, host: 'localhost' } });
    assert.match(local.inspectorUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const other = await startRuntime({ inspector: { port: 0, host: '127.0.0.2' } });
    assert.match(other.inspectorUrl ?? '', /^http:\/\/127\.0\.0\.2:\d+\/$/);
    assert.equal((await get(other.inspectorUrl!)).status, 200);
  });

  test('a taken port fails the start and leaves nothing running', async () => {
    const first = await startRuntime({ inspector: { port: 0 } });
    const port = Number(new URL(first.inspectorUrl!).port);
    await assert.rejects(createRuntime({ workers: 1, inspector: { port } }), (e: Error & { code?: string; osCode?: string }) => {
      assert.equal(e.code, 'INVALID_ARGUMENT');
      assert.equal(e.osCode, 'EADDRINUSE');
      return true;
    });
  });
});

describe('inspector: what it serves', () => {
  test('the page, its files and the charts; loopback Host and same-origin WebSocket only', async () => {
    const rt = await startRuntime({ inspector: { port: 0 } });
    const url = rt.inspectorUrl!;
    const page = await get(url);
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /text\/html/);
    assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
    assert.match(page.body, /<script type="module" src="\/app.js">/);
    // Nothing from elsewhere: every address the page names is its own.
    assert.doesNotMatch(page.body, /https?:\/\//);
    assert.equal((await get(`${url}app.js`)).status, 200);
    assert.equal((await get(`${url}style.css`)).status, 200);
    const chart = await get(`${url}chart/command.svg`);
    assert.equal(chart.status, 200);
    for (const state of ['starting', 'running', 'backoff', 'restarting', 'stopped']) assert.match(chart.body, new RegExp(`data-state="${state}"`));
    assert.match((await get(`${url}chart/workspace.svg`)).body, /data-state="reaping\.terminating"/);
    assert.match((await get(`${url}chart/pipeline.svg`)).body, /data-state="backoff"/);
    assert.equal((await get(`${url}chart/nothing.svg`)).status, 404);
    assert.equal((await get(`${url}nothing`)).status, 404);

    // A name that resolves to this machine through someone else's DNS is not the page's name.
    assert.equal((await get(url, { Host: 'attacker.example:80' })).status, 403);
    const foreign = new WebSocket(wsUrl(url), { origin: 'http://attacker.example' });
    const refused = await new Promise<string>((resolve) => {
      foreign.once('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
      foreign.once('open', () => resolve('open'));
      foreign.once('error', (e) => resolve(e.message));
    });
    foreign.terminate();
    assert.equal(refused, '403');
  });

  test('the actor table follows the records; a stopped workspace ends its tree; shutdown closes the page', async () => {
    const rt = await createRuntime({ workers: 1, inspector: { port: 0 } });
    const url = rt.inspectorUrl!;
    const { socket, messages } = await openClient(url);
    const ws = await rt.createWorkspace({ label: 'table' });
    const cmd = await ws.run({ exec: '/bin/true', label: 'once' });
    await cmd.exited;
    await ws.stop();
    type View = { id: string; machine: string; state: string; live: boolean; label: string };
    await until(
      () => messages.some((m) => m.type === 'update' && (m.actors as View[]).some((a) => a.id === ws.id && a.state === 'stopped')),
      'the workspace stopped, on the socket',
    );
    const state = JSON.parse((await get(`${url}api/state`)).body) as { actors: View[] };
    const byId = new Map(state.actors.map((a) => [a.id, a]));
    const wsView = byId.get(ws.id);
    assert.deepEqual(
      { machine: wsView?.machine, label: wsView?.label, state: wsView?.state, live: wsView?.live },
      { machine: 'workspace', label: 'table', state: 'stopped', live: false },
    );
    assert.equal(byId.get(cmd.commandKey)?.state, 'exited');
    assert.equal(byId.get(cmd.commandKey)?.label, 'once');
    assert.equal(byId.get(cmd.commandKey)?.live, false);

    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    await rt.shutdown({ graceMs: 0 });
    assert.equal(await closed, 1001);
    await assert.rejects(get(url), { code: 'ECONNREFUSED' });
  });
});

describe('inspector: the selected actor\'s output', () => {
  test('a command\'s latest run, stdout and stderr apart; a pipeline\'s, one entry per node', async () => {
    const rt = await startRuntime({ inspector: { port: 0 } });
    const { socket, messages } = await openClient(rt.inspectorUrl!);
    try {
      const ws = await rt.createWorkspace({ label: 'talk' });
      const cmd = await ws.run({ exec: '/bin/sh', argv: ['-c', 'echo out; echo err >&2'], label: 'both' });
      await cmd.exited;
      const pipe = await rt.runPipeline({
        label: 'p',
        workspace: ws.id,
        nodes: [{ label: 'gen', exec: '/bin/sh', argv: ['-c', 'echo to-cat; echo gen-err >&2'] }, { label: 'cat', exec: 'cat' }],
        edges: [{ from: 'gen', to: 'cat' }],
      });
      await pipe.done;
      type Output = Array<{ label: string; stdout: string; stderr: string }>;
      const detailOf = async (id: string, what: string): Promise<Output> => {
        messages.length = 0;
        socket.send(JSON.stringify({ type: 'select', id }));
        await until(() => messages.some((m) => m.type === 'detail' && m.id === id), what);
        return messages.find((m) => m.type === 'detail' && m.id === id)!.output as Output;
      };
      assert.deepEqual(await detailOf(cmd.commandKey, 'the command\'s detail'), [{ label: 'both', stdout: 'out\n', stderr: 'err\n' }]);
      const nodes = await detailOf(pipe.id, 'the pipeline\'s detail');
      assert.deepEqual(nodes.sort((a, b) => a.label.localeCompare(b.label)), [
        { label: 'cat', stdout: 'to-cat\n', stderr: '' },
        { label: 'gen', stdout: '', stderr: 'gen-err\n' },
      ]);
    } finally {
      socket.close();
    }
  });
});

describe('inspector: bounded for slow pages', () => {
  test('a page that does not read loses what it cannot take and is resynced once it reads again', async () => {
    const rt = await startRuntime();
    const limits = { highWaterBytes: 128 * 1024, lowWaterBytes: 16 * 1024, flushMs: 1, tickMs: 20, maxPendingRecords: 400, ringRecords: 200 };
    const server: InspectorServer = await startInspector(viewOf(rt), { port: 0 }, limits);
    try {
      const slow = await openClient(server.url);
      const fast = await openClient(server.url);
      slow.socket.pause();
      // ~40 MB of records, 100 per turn of the event loop: far more than the kernel buffers hold.
      let maxBuffered = 0;
      for (let round = 0; round < 400; round++) {
        for (let i = 0; i < 100; i++) server.receive(snapshotRecord(`a${i}`, 1000));
        await new Promise((r) => setTimeout(r, 1));
        for (const s of server.clientStats()) maxBuffered = Math.max(maxBuffered, s.bufferedBytes);
      }
      const [slowStats] = server.clientStats().filter((s) => s.droppedRecords > 0);
      assert.ok(slowStats, 'the slow page dropped records');
      assert.ok(slowStats.droppedRecords > 10_000, `dropped ${slowStats.droppedRecords}`);
      // Over the bound by one message at most: an update of one turn (~100 KB) or a state (~200 KB).
      assert.ok(maxBuffered <= limits.highWaterBytes + 512 * 1024, `${maxBuffered} bytes waited in a socket`);
      // The fast page got everything.
      assert.equal(server.clientStats().filter((s) => s.droppedRecords === 0).length, 1);
      const fastRecords = () => fast.messages.filter((m) => m.type === 'update').reduce((n, m) => n + (m.records as unknown[]).length, 0);
      await until(() => fastRecords() === 40_000, 'every record on the fast page');

      // A burst that no flush gets to between two records: the batch never outgrows its bound.
      for (let i = 0; i < 5000; i++) server.receive(snapshotRecord('burst', 10));
      assert.ok(server.pendingRecords <= limits.maxPendingRecords, `${server.pendingRecords} records pending`);

      const before = slow.messages.length;
      slow.socket.resume();
      await until(() => slow.messages.slice(before).some((m) => m.type === 'state' && Number(m.dropped) > 0), 'a resync of the slow page');
      const resync = slow.messages.slice(before).find((m) => m.type === 'state')!;
      // The whole state: every actor the table holds, the bounded ring of recent records.
      assert.ok((resync.records as unknown[]).length <= limits.ringRecords);
      assert.ok((resync.actors as Array<{ id: string }>).some((a) => a.id === 'burst'));
      await until(() => server.clientStats().every((s) => !s.waitingForResync), 'both pages in step');
      slow.socket.terminate();
      fast.socket.terminate();
    } finally {
      await server.close();
    }
  });
});

const skip = !existsSync(CHROMIUM) && !process.env.CI ? `${CHROMIUM} is absent (CI installs it: apt-get install chromium)` : false;

describe('inspector: the page in a real browser', () => {
  test('a crash-looping command: its chart shows backoff, its countdown runs, a stop shows stopped', { skip, timeout: 90_000 }, async () => {
    const rt = await startRuntime({ inspector: { port: 0 }, statsIntervalMs: 250 });
    const ws = await rt.createWorkspace({ label: 'crash-loop demo' });
    const cmd = await ws.run({
      exec: '/bin/sh',
      argv: ['-c', 'echo connecting to the database; echo "error: connection refused" >&2; exit 1'],
      label: 'always-fails',
      restart: { onFailure: true, backoffMs: 5000, maxRestarts: 10 },
    });
    const sleeper = await ws.run({ exec: '/bin/sleep', argv: ['60'], label: 'sleeper' });
    const talker = await ws.run({ exec: '/bin/sh', argv: ['-c', 'echo hello from talker; echo line two; echo trouble >&2; exec sleep 60'], label: 'talker' });
    await waitFor(cmd.subscribe.bind(cmd), (s) => stateOf(s) === 'backoff', 'the first backoff');

    const userDataDir = mkdtempSync(path.join(tmpdir(), 'shuma-inspector-chromium-'));
    const problems: string[] = [];
    let context: BrowserContext | null = null;
    try {
      context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 1400, height: 900 },
      });
      const page = context.pages()[0] ?? (await context.newPage());
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(`console: ${message.text()}`);
      });
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText ?? ''}`));
      await page.goto(rt.inspectorUrl!);
      await page.waitForSelector('#connection.conn-open');

      // Selected before any click: the first live command; the log follows the selection.
      await page.waitForSelector(`#actor-list [data-actor-id="${cmd.commandKey}"].selected`);
      assert.equal(await page.inputValue('#filter-actor'), '@selected');

      // Readable at 1400×900: the chart at its own size (12 px text, scrolled to the current
      // state, not shrunk to the panel), the actor labels whole.
      await page.waitForSelector('#chart g[data-state="backoff"].active');
      const name = await page.locator('#chart g[data-state="backoff"] text').first().boundingBox();
      assert.ok(name && name.height >= 11, `the chart's state names are ${name?.height} px high`);
      // Whichever state is current as it is looked at (on a loaded machine the 5 s backoff may end
      // meanwhile, and the chart scrolls on to the next state: measured apart, backoff was then
      // out of view), measured in one turn of the page, where the highlight and its scroll happen.
      const inView = await page.$eval('#chart', (box) => {
        const active = [...box.querySelectorAll('g.active')].at(-1);
        if (!active) return 'no state is highlighted';
        const a = active.getBoundingClientRect();
        const b = box.getBoundingClientRect();
        return a.top >= b.top && a.bottom <= b.bottom ? true : `${active.getAttribute('data-state')} at ${a.top}–${a.bottom}, the panel at ${b.top}–${b.bottom}`;
      });
      assert.equal(inView, true, 'the current state is in view');
      const cut = await page.$$eval('#actor-list .actor-label, #actor-list .actor-sub', (els) =>
        els.filter((e) => (e as unknown as { scrollWidth: number; clientWidth: number }).scrollWidth > (e as unknown as { clientWidth: number }).clientWidth + 1).length,
      );
      assert.equal(cut, 0, 'no actor label is cut');

      // The selected command's output: its last lines, stderr apart.
      await page.click(`#actor-list [data-actor-id="${talker.commandKey}"]`);
      await page.waitForFunction(() => /hello from talker\nline two/.test(document.querySelector('#output pre .out')?.textContent ?? ''));
      assert.equal(await page.textContent('#output pre .err'), 'trouble');

      // The workspace: its stats as sparklines.
      const wsRow = `#actor-list [data-actor-id="${ws.id}"]`;
      await page.click(wsRow);
      await page.waitForSelector('#chart g[data-state="running"].active');
      await page.waitForSelector('#sparklines [data-series="processes"]');
      // Forks refused at a cgroup's pids limit: a row of its own, '—' for a workspace without one.
      assert.equal(await page.textContent('#sparklines [data-series="forksRefused"] .spark-value'), '—');

      // The command: its chart with backoff highlighted, a countdown that runs, its why() trail.
      const row = `#actor-list [data-actor-id="${cmd.commandKey}"]`;
      await page.click(row);
      await page.waitForSelector(`${row}.selected`);
      await page.waitForSelector('#chart g[data-state="backoff"].active');
      assert.equal(await page.textContent('#detail-state'), 'backoff');
      assert.equal(await page.locator('#chart g.active').count(), 1, 'one state of the command chart is highlighted');
      const remaining = '#timer-list [data-timer="backoff"] .remaining';
      const countdown = () =>
        page.$eval(remaining, (node) => ({ seconds: Number.parseFloat(node.textContent ?? ''), deadline: node.getAttribute('data-deadline') }));
      await page.waitForSelector(remaining);
      let shown = await countdown();
      // Read in its last second, this backoff's countdown may show only "0.1 s" or "due" before
      // the next run: the next backoff's (10 s) is the one watched then.
      if (!(shown.seconds > 1)) {
        await page.waitForFunction(
          ([selector, before]) => {
            const node = document.querySelector(selector as string);
            return node !== null && node.getAttribute('data-deadline') !== before && Number.parseFloat(node.textContent ?? '') > 1;
          },
          [remaining, shown.deadline] as const,
        );
        shown = await countdown();
      }
      const first = shown.seconds;
      // The page counts to the runtime's deadline (the backoff grows: 5 s, then 10 s…).
      const deadline = Number(cmd.getSnapshot()?.context.backoffDeadline);
      const left = (deadline - Date.now()) / 1000;
      assert.ok(first > 0 && Math.abs(first - left) < 1, `countdown ${first} s, the runtime's deadline is ${left.toFixed(1)} s away`);
      await page.waitForFunction(
        ([selector, start]) => {
          const value = Number.parseFloat(document.querySelector(selector as string)?.textContent ?? '');
          return value > 0 && value < (start as number);
        },
        [remaining, first] as const,
      );
      await page.waitForFunction(() => /exited 1/.test(document.querySelector('#why-list')?.textContent ?? ''));
      assert.match((await page.textContent('#why-list')) ?? '', /backoff 5000 ms/);

      // The log, filtered to the selected actor and to events.
      await page.selectOption('#filter-actor', '@selected');
      await page.uncheck('#filter-kinds input[value="snapshot"]');
      await page.uncheck('#filter-kinds input[value="actor"]');
      await page.waitForFunction(
        (key) => {
          const rows = Array.from(document.querySelectorAll('#log-rows tr'));
          return rows.length > 0 && rows.every((r) => r.dataset.actorId === key && r.dataset.kind === 'event');
        },
        cmd.commandKey,
      );
      assert.match((await page.textContent('#log-rows')) ?? '', /EXITED/);
      await page.check('#filter-kinds input[value="snapshot"]');
      await page.selectOption('#filter-actor', '@tree');

      const shot = process.env.SHUMA_SCREENSHOT === '1' ? path.join(ROOT, 'docs/inspector.png') : path.join(userDataDir, 'inspector.png');
      mkdirSync(path.dirname(shot), { recursive: true });
      await page.screenshot({ path: shot });
      assert.ok(readFileSync(shot).subarray(1, 4).toString() === 'PNG');

      // Stopped: the list, the detail and the chart say so.
      await ws.stop({ graceMs: 0 });
      await page.waitForFunction(() => document.querySelector('#detail-state')?.textContent === 'stopped');
      await page.waitForSelector('#chart g[data-state="stopped"].active');
      await page.waitForFunction((selector) => document.querySelector(`${selector} .actor-state`)?.textContent === 'stopped', row);
      await page.waitForFunction((selector) => document.querySelector(`${selector} .actor-state`)?.textContent === 'stopped', wsRow);
      assert.equal(await page.locator('#timer-list li').count(), 0, 'no timer is left');
      assert.equal(await page.textContent(`#actor-list [data-actor-id="${sleeper.commandKey}"] .actor-state`), 'stopped');

      assert.deepEqual(problems, [], 'the page logged no error');
    } finally {
      await context?.close();
      await rt.shutdown({ graceMs: 0 });
    }

    // Nothing the test started is left: no command, no chromium (nor a helper that left its parent).
    await until(() => descendants().length === 0 && processesNaming(userDataDir).length === 0, 'every child process gone', 10_000).catch(() => undefined);
    assert.deepEqual(descendants(), []);
    assert.deepEqual(processesNaming(userDataDir), []);
    rmSync(userDataDir, { recursive: true, force: true });
  });
});
