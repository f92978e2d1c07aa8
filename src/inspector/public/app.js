// The shuma inspector page: plain JavaScript, no library, nothing fetched from outside the
// runtime that serves it. It keeps the runtime's view (actors, recent records) from a
// WebSocket: a `state` message replaces everything (first connection, or after the server
// dropped what this page was too slow to take), `update` messages add to it.
//
// Clocks: every deadline and time stamp is on the runtime's clock, which may not be this
// browser's (another machine's wall clock, or a ManualClock in tests). Each message carries
// the runtime's `now` when it was sent; `now - Date.now()` on arrival underestimates the
// offset by the message's transit time, so the page keeps the largest of the recent
// estimates. With a manual clock time moves only when the runtime says so: countdowns then
// show the time left at the runtime's last word, and do not run on their own.
'use strict';

const MAX_RECORDS = 1000;
const MAX_LOG_ROWS = 300;
const OFFSET_SAMPLES = 20;

const model = {
  actors: new Map(),
  records: [],
  selected: null,
  detail: null,
  manual: false,
  lastNow: null,
  offsets: [],
  resyncs: 0,
  dropped: 0,
};
const charts = new Map();
let socket = null;
let retryMs = 500;
let renderQueued = false;
let shownChart = null;

const $ = (id) => document.getElementById(id);

// ── clock ────────────────────────────────────────────────────────────────────────

function noteServerNow(now) {
  if (typeof now !== 'number') return;
  model.lastNow = now;
  model.offsets.push(now - Date.now());
  if (model.offsets.length > OFFSET_SAMPLES) model.offsets.shift();
}

function offset() {
  return model.offsets.length === 0 ? 0 : Math.max(...model.offsets);
}

/** The runtime's clock now, as well as this page can tell. */
function runtimeNow() {
  if (model.manual) return model.lastNow ?? Date.now();
  return Date.now() + offset();
}

function clockText(ms) {
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function secondsText(ms) {
  return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
}

// ── connection ───────────────────────────────────────────────────────────────────

function connect() {
  setConnection('connecting', 'connecting…');
  socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  socket.addEventListener('open', () => {
    retryMs = 500;
    setConnection('open', 'live');
    if (model.selected !== null) send({ type: 'select', id: model.selected });
  });
  socket.addEventListener('message', (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    receive(message);
  });
  socket.addEventListener('close', (event) => {
    setConnection('closed', `disconnected${event.reason ? `: ${event.reason}` : ''}; retrying`);
    socket = null;
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 10_000);
  });
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function setConnection(kind, text) {
  const el = $('connection');
  el.className = `conn conn-${kind}`;
  el.textContent = text;
}

function receive(message) {
  noteServerNow(message.now);
  switch (message.type) {
    case 'state':
      model.manual = message.manual === true;
      model.actors = new Map(message.actors.map((a) => [a.id, a]));
      selectDefault();
      model.records = message.records.slice(-MAX_RECORDS);
      if (model.dropped !== message.dropped && message.dropped > 0) model.resyncs++;
      model.dropped = message.dropped ?? 0;
      break;
    case 'update':
      for (const actor of message.actors) model.actors.set(actor.id, actor);
      selectDefault();
      for (const record of message.records) model.records.push(record);
      if (model.records.length > MAX_RECORDS) model.records.splice(0, model.records.length - MAX_RECORDS);
      break;
    case 'detail':
      if (message.id === model.selected) model.detail = message;
      break;
    case 'tick':
      break;
    default:
      return;
  }
  queueRender();
}

// ── rendering ────────────────────────────────────────────────────────────────────

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function render() {
  renderActors();
  renderDetail();
  renderLog();
  $('resyncs').textContent = model.dropped > 0 ? `${model.dropped} records skipped while this page was behind (resynced)` : '';
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function pillClass(actor) {
  if (!actor.live && actor.status === 'active') return 'pill pill-ended';
  const state = actor.state;
  if (['backoff', 'restarting', 'reaping', 'stopping', 'starting'].some((s) => state.startsWith(s))) return 'pill pill-hot';
  if (['failed', 'gaveUp', 'lost'].includes(state) || actor.status === 'error') return 'pill pill-bad';
  if (['running', 'succeeded', 'exited'].includes(state)) return 'pill pill-good';
  return 'pill';
}

function displayName(actor) {
  return actor.label || actor.id.slice(-8);
}

/** Workspaces in order of appearance, each followed by its commands and pipelines. */
function orderedActors() {
  const all = [...model.actors.values()];
  const roots = all.filter((a) => a.machine === 'workspace');
  const rootIds = new Set(roots.map((r) => r.id));
  const out = [];
  for (const root of roots) {
    out.push({ actor: root, child: false });
    for (const a of all) if (a.rootId === root.id && a.id !== root.id) out.push({ actor: a, child: true });
  }
  for (const a of all) if (a.machine !== 'workspace' && !rootIds.has(a.rootId)) out.push({ actor: a, child: true });
  return out;
}

/** The list is updated in place, row by row: a row under the pointer is never replaced mid-click. */
const actorRows = new Map();

function renderActors() {
  const list = $('actor-list');
  const rows = orderedActors();
  $('no-actors').hidden = rows.length > 0;
  const live = rows.filter((r) => r.actor.live).length;
  $('actor-count').textContent = rows.length === 0 ? '' : `(${live} live${rows.length > live ? `, ${rows.length - live} ended` : ''})`;
  const items = rows.map(({ actor, child }) => {
    const signature = JSON.stringify([actor, child, actor.id === model.selected]);
    let entry = actorRows.get(actor.id);
    if (!entry) {
      entry = { li: el('li'), signature: '' };
      entry.li.dataset.actorId = actor.id;
      entry.li.tabIndex = 0;
      entry.li.setAttribute('role', 'button');
      actorRows.set(actor.id, entry);
    }
    if (entry.signature !== signature) {
      entry.signature = signature;
      fillActorRow(entry.li, actor, child);
    }
    return entry.li;
  });
  const shown = new Set(rows.map((r) => r.actor.id));
  for (const id of actorRows.keys()) if (!shown.has(id)) actorRows.delete(id);
  const current = [...list.children];
  if (current.length !== items.length || current.some((node, i) => node !== items[i])) list.replaceChildren(...items);
}

function fillActorRow(li, actor, child) {
  li.className = `actor-row${child ? ' child' : ''}${actor.live ? '' : ' ended'}${actor.id === model.selected ? ' selected' : ''}`;
  const facts = Object.entries(actor.facts)
    .filter(([k]) => k !== 'runId')
    .map(([k, v]) => `${k} ${v}`);
  const sub = el('span', 'actor-sub', [actor.id.slice(-10), ...facts].join(' · '));
  const timer = actor.timers[0];
  if (timer) {
    const t = el('span', 'remaining mini-remaining', ` · ${timer.name} ${secondsText(timer.deadline - runtimeNow())}`);
    t.dataset.deadline = String(timer.deadline);
    t.dataset.name = timer.name;
    sub.append(t);
  }
  li.replaceChildren(
    el('span', `badge badge-${actor.machine}`, actor.machine),
    el('span', 'actor-label', displayName(actor)),
    el('span', `${pillClass(actor)} actor-state`, actor.state || '…'),
    sub,
  );
}

/** Nothing chosen yet: the first live command (what one usually came to see), else the first actor. */
function selectDefault() {
  if (model.selected !== null || model.actors.size === 0) return;
  const rows = orderedActors().map((r) => r.actor);
  const first = rows.find((a) => a.machine === 'command' && a.live) ?? rows.find((a) => a.live) ?? rows[0];
  select(first.id);
}

function select(id) {
  if (model.selected === id) return;
  model.selected = id;
  model.detail = null;
  send({ type: 'select', id });
  queueRender();
}

/** `{ reaping: 'terminating' }` → ['reaping', 'reaping.terminating']. */
function activePaths(value, prefix = '') {
  if (typeof value === 'string') return value === '' ? [] : [prefix + value];
  return Object.entries(value).flatMap(([key, child]) => [prefix + key, ...activePaths(child, `${prefix}${key}.`)]);
}

async function chartFor(machine) {
  if (!charts.has(machine)) {
    charts.set(
      machine,
      fetch(`/chart/${encodeURIComponent(machine)}.svg`).then((r) => {
        if (!r.ok) throw new Error(`no chart for ${machine}`);
        return r.text();
      }),
    );
  }
  return charts.get(machine);
}

function showChart(actor) {
  const box = $('chart');
  if (shownChart !== actor.machine) {
    shownChart = actor.machine;
    box.replaceChildren(el('p', 'muted', 'drawing…'));
    chartFor(actor.machine)
      .then((text) => {
        if (shownChart !== actor.machine) return;
        const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
        const svg = document.importNode(doc.documentElement, true);
        // Scaled to the panel (the viewBox keeps the proportions); a click shows it at its own size.
        svg.dataset.width = svg.getAttribute('width') ?? '';
        svg.removeAttribute('width');
        svg.removeAttribute('height');
        box.replaceChildren(svg);
        zoomChart(box.classList.contains('zoomed'));
        highlight();
      })
      .catch((error) => {
        box.replaceChildren(el('p', 'muted', `no chart: ${error.message}`));
      });
  }
  highlight();
}

function zoomChart(zoomed) {
  const box = $('chart');
  box.classList.toggle('zoomed', zoomed);
  box.title = zoomed ? 'click: fit the chart to the panel' : 'click: the chart at its own size';
  const svg = box.querySelector('svg');
  if (!svg) return;
  svg.style.width = zoomed && svg.dataset.width ? `${svg.dataset.width}px` : '';
  delete box.dataset.shown;
  if (zoomed) highlight();
}

function highlight() {
  const actor = model.actors.get(model.selected);
  const box = $('chart');
  const paths = new Set(actor ? activePaths(actor.value) : []);
  const key = [...paths].join(' ');
  for (const g of box.querySelectorAll('g[data-state]')) g.classList.toggle('active', paths.has(g.dataset.state));
  // At its own size the chart is larger than the panel: keep the current state in view.
  if (box.classList.contains('zoomed') && box.dataset.shown !== key && box.querySelector('g.active')) {
    box.dataset.shown = key;
    const active = [...box.querySelectorAll('g.active')].at(-1);
    const b = box.getBoundingClientRect();
    const a = active.getBoundingClientRect();
    box.scrollLeft += a.left + a.width / 2 - (b.left + b.width / 2);
    box.scrollTop += a.top + a.height / 2 - (b.top + b.height / 2);
  }
}

function renderDetail() {
  const actor = model.selected === null ? undefined : model.actors.get(model.selected);
  $('detail-empty').hidden = actor !== undefined;
  $('detail-body').hidden = actor === undefined;
  if (!actor) {
    shownChart = null;
    return;
  }
  $('detail-title').textContent = displayName(actor);
  $('detail-machine').textContent = actor.machine;
  $('detail-machine').className = `badge badge-${actor.machine}`;
  $('detail-state').textContent = actor.state || '…';
  $('detail-state').className = pillClass(actor);
  $('detail-id').textContent = actor.id;
  showChart(actor);
  renderTimers(actor);
  renderFacts(actor);
  const detail = model.detail && model.detail.id === actor.id ? model.detail : null;
  $('why-box').hidden = actor.machine === 'workspace';
  $('stats-box').hidden = actor.machine !== 'workspace';
  $('output-box').hidden = actor.machine === 'workspace';
  if (actor.machine !== 'workspace') renderOutput(detail?.output ?? []);
  if (actor.machine === 'workspace') renderStats(detail?.stats ?? []);
  else renderWhy(detail?.why ?? []);
  $('context').textContent = detail?.context ? JSON.stringify(detail.context, null, 2) : '';
}

function renderTimers(actor) {
  const list = $('timer-list');
  $('no-timers').hidden = actor.timers.length > 0;
  list.replaceChildren(
    ...actor.timers.map((timer) => {
      const li = el('li');
      li.dataset.timer = timer.name;
      li.append(el('span', 'timer-name', timer.name));
      const remaining = el('span', 'remaining', secondsText(timer.deadline - runtimeNow()));
      remaining.dataset.deadline = String(timer.deadline);
      remaining.dataset.since = String(actor.since);
      li.append(remaining);
      const bar = el('div', 'timer-bar');
      bar.append(el('div', 'timer-fill'));
      li.append(bar);
      li.append(el('span', 'timer-due', `due at ${clockText(timer.deadline)} (runtime clock)${model.manual ? ' · manual clock: moves when the runtime advances it' : ''}`));
      return li;
    }),
  );
  tickTimers();
}

function renderFacts(actor) {
  const dl = $('facts');
  const entries = [['since', clockText(actor.since)], ['status', actor.status], ...Object.entries(actor.facts)];
  dl.replaceChildren(...entries.flatMap(([k, v]) => [el('dt', '', k), el('dd', '', String(v))]));
}

const OUTPUT_LINES = 40;

/** Each run's last lines (one run for a command, one per node for a pipeline); stderr marked. */
function renderOutput(runs) {
  const written = runs.filter((r) => r.stdout || r.stderr);
  $('no-output').hidden = written.length > 0;
  const box = $('output');
  const signature = JSON.stringify(written);
  if (box.dataset.signature === signature) return;
  box.dataset.signature = signature;
  box.replaceChildren(
    ...written.map((run) => {
      const block = el('div', 'output-run');
      if (runs.length > 1) block.append(el('div', 'output-label', run.label));
      const pre = el('pre', 'output-text');
      pre.dataset.label = run.label;
      const lines = (text) => text.replace(/\n$/, '').split('\n').slice(-OUTPUT_LINES).join('\n');
      if (run.stdout) pre.append(el('span', 'out', lines(run.stdout)));
      if (run.stdout && run.stderr) pre.append(document.createTextNode('\n'));
      if (run.stderr) pre.append(el('span', 'err', lines(run.stderr)));
      block.append(pre);
      return block;
    }),
  );
  for (const pre of box.querySelectorAll('pre')) pre.scrollTop = pre.scrollHeight;
}

function renderWhy(trail) {
  $('no-why').hidden = trail.length > 0;
  $('why-list').replaceChildren(
    ...trail.map((entry) => {
      const li = el('li');
      li.append(el('time', '', clockText(entry.at)), document.createTextNode(entry.text));
      return li;
    }),
  );
}

const SERIES = [
  { field: 'rssBytes', label: 'memory', format: (v) => `${(v / 1048576).toFixed(1)} MiB` },
  { field: 'cpuPercent', label: 'cpu', format: (v) => `${v.toFixed(1)} %` },
  { field: 'processes', label: 'processes', format: (v) => String(v) },
  // Forks the cgroup's pids limit refused so far (a fork bomb, contained): '—' without a cgroup.
  { field: 'forksRefused', label: 'forks refused', format: (v) => String(v) },
];

function renderStats(stats) {
  $('no-stats').hidden = stats.length > 0;
  const box = $('sparklines');
  if (stats.length === 0) {
    box.replaceChildren();
    return;
  }
  box.replaceChildren(
    ...SERIES.map(({ field, label, format }) => {
      const values = stats.map((s) => s[field]).map((v) => (typeof v === 'number' ? v : null));
      const row = el('div', 'spark-row');
      row.dataset.series = field;
      const last = values.filter((v) => v !== null).at(-1);
      row.append(el('span', '', label), sparkline(values), el('span', 'spark-value', last === undefined ? '—' : format(last)));
      return row;
    }),
  );
}

function sparkline(values) {
  const NS = 'http://www.w3.org/2000/svg';
  const width = 160;
  const height = 28;
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'spark');
  const known = values.filter((v) => v !== null);
  if (known.length === 0) return svg;
  const max = Math.max(...known, 1e-9);
  const min = Math.min(...known, 0);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const points = [];
  values.forEach((v, i) => {
    if (v === null) return;
    const y = height - 2 - ((v - min) / (max - min || 1)) * (height - 4);
    points.push(`${(i * step).toFixed(1)},${y.toFixed(1)}`);
  });
  if (points.length === 1) points.push(`${width},${points[0].split(',')[1]}`);
  const area = document.createElementNS(NS, 'polygon');
  area.setAttribute('class', 'spark-area');
  area.setAttribute('points', `${points[0].split(',')[0]},${height} ${points.join(' ')} ${points.at(-1).split(',')[0]},${height}`);
  const line = document.createElementNS(NS, 'polyline');
  line.setAttribute('class', 'spark-line');
  line.setAttribute('points', points.join(' '));
  svg.append(area, line);
  return svg;
}

/** The countdowns move between messages: ten times a second, from the runtime's clock as estimated. */
function tickTimers() {
  const now = runtimeNow();
  for (const node of document.querySelectorAll('.remaining[data-deadline]')) {
    const deadline = Number(node.dataset.deadline);
    const left = deadline - now;
    const text = left > 0 ? secondsText(left) : 'due';
    const prefix = node.classList.contains('mini-remaining') ? ` · ${node.dataset.name} ` : '';
    if (node.textContent !== prefix + text) node.textContent = prefix + text;
    const since = Number(node.dataset.since);
    const fill = node.parentElement?.querySelector('.timer-fill');
    if (fill && Number.isFinite(since) && deadline > since) {
      fill.style.width = `${Math.min(100, Math.max(0, ((now - since) / (deadline - since)) * 100)).toFixed(1)}%`;
    }
  }
  if (model.lastNow !== null) $('clock').textContent = `runtime clock ${clockText(now)}`;
  const ms = offset();
  $('offset').textContent = model.manual
    ? 'manual clock: countdowns move when the runtime advances it'
    : `runtime − browser: ${ms >= 0 ? '+' : '−'}${Math.abs(ms) < 1000 ? `${Math.abs(ms).toFixed(0)} ms` : secondsText(Math.abs(ms))}`;
}

// ── the event log ────────────────────────────────────────────────────────────────

function shortPath(path) {
  const dot = path.indexOf('.');
  return dot < 0 ? path : path.slice(dot + 1);
}

function stateText(value) {
  if (typeof value === 'string') return value;
  return Object.entries(value)
    .map(([k, v]) => {
      const inner = stateText(v);
      return inner ? `${k}.${inner}` : k;
    })
    .join(', ');
}

function brief(object, skip) {
  const parts = [];
  for (const [k, v] of Object.entries(object ?? {})) {
    if (skip.includes(k)) continue;
    parts.push(`${k}=${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`);
  }
  const text = parts.join(' ');
  return text.length > 140 ? `${text.slice(0, 139)}…` : text;
}

function summary(record) {
  switch (record.kind) {
    case 'actor':
      return `${record.machine ?? 'actor'} created`;
    case 'event':
      return `${record.event?.type ?? '?'} ${brief(record.event, ['type', 'at'])}`.trim();
    case 'snapshot': {
      const timers = (record.timers ?? []).map((t) => ` · ${t.name} due ${clockText(t.deadline)}`).join('');
      return `→ ${stateText(record.snapshot?.value ?? '')} (${record.snapshot?.status ?? '?'})${timers}`;
    }
    case 'microstep':
      return (record.transitions ?? [])
        .map((t) => `${shortPath(t.source)} → ${t.targets.map(shortPath).join(', ') || '(stay)'} on ${t.eventType}`)
        .join('; ');
    case 'action':
      return `${record.action?.type ?? '?'}`;
    default:
      return '';
  }
}

function logFilter() {
  const kinds = new Set([...document.querySelectorAll('#filter-kinds input:checked')].map((i) => i.value));
  const which = $('filter-actor').value;
  const selected = model.selected === null ? null : model.actors.get(model.selected);
  return (record) => {
    if (!kinds.has(record.kind)) return false;
    if (which === '*') return true;
    // Nothing selected: the selected actor's records are everyone's.
    if (which === '@selected') return selected === null || selected === undefined || record.actorId === selected.id;
    if (which === '@tree') return selected !== null && selected !== undefined && record.rootId === selected.rootId;
    return record.actorId === which;
  };
}

let actorOptionsSignature = '';

/** One option per actor, rebuilt only when the actors or their names change. */
function renderActorOptions() {
  const menu = $('filter-actor');
  const actors = orderedActors().map(({ actor, child }) => [actor.id, `${child ? '\u00a0\u00a0' : ''}${actor.machine} ${displayName(actor)}`]);
  const signature = JSON.stringify(actors);
  if (signature === actorOptionsSignature) return;
  actorOptionsSignature = signature;
  const current = menu.value;
  const fixed = [...menu.options].filter((o) => o.value === '*' || o.value.startsWith('@'));
  const options = actors.map(([id, text]) => {
    const option = document.createElement('option');
    option.value = id;
    option.textContent = text;
    return option;
  });
  menu.replaceChildren(...fixed, ...options);
  menu.value = [...menu.options].some((o) => o.value === current) ? current : '@selected';
}

function renderLog() {
  renderActorOptions();
  const keep = logFilter();
  const rows = [];
  for (let i = model.records.length - 1; i >= 0 && rows.length < MAX_LOG_ROWS; i--) {
    const record = model.records[i];
    if (!keep(record)) continue;
    const tr = el('tr');
    tr.dataset.kind = record.kind;
    tr.dataset.actorId = record.actorId;
    const actor = model.actors.get(record.actorId);
    const kind = el('td');
    kind.append(el('span', `kind kind-${record.kind}`, record.kind));
    tr.append(el('td', '', clockText(record.at)), el('td', '', actor ? `${actor.machine} ${displayName(actor)}` : record.actorId.slice(-10)), kind, el('td', '', summary(record)));
    rows.push(tr);
  }
  $('log-rows').replaceChildren(...rows);
  $('log-count').textContent = `${rows.length} shown of ${model.records.length} kept`;
}

// ── wiring ───────────────────────────────────────────────────────────────────────

function start() {
  $('actor-list').addEventListener('click', (event) => {
    const row = event.target.closest('[data-actor-id]');
    if (row) select(row.dataset.actorId);
  });
  $('actor-list').addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' && event.key !== ' ') return;
    const row = event.target.closest('[data-actor-id]');
    if (row) {
      event.preventDefault();
      select(row.dataset.actorId);
    }
  });
  $('chart').addEventListener('click', () => zoomChart(!$('chart').classList.contains('zoomed')));
  $('filter-actor').addEventListener('change', queueRender);
  for (const box of document.querySelectorAll('#filter-kinds input')) box.addEventListener('change', queueRender);
  setInterval(tickTimers, 100);
  connect();
}

start();
