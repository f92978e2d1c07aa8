// The shuma inspector page: plain JavaScript, no library, nothing fetched from outside the
// runtime that serves it. It keeps the runtime's view (actors, recent records) from a
// WebSocket: a `state` message replaces everything (first connection, or after the server
// dropped what this page was too slow to take), `update` messages add to it.
//
// Its parts, as modules: page-model.js (the model, the runtime's clock, helpers), chart-view.js,
// detail-view.js (the selected actor's panel), event-log.js; this file connects, receives,
// keeps the actor list and wires the page.
import { zoomChart } from './chart-view.js';
import { renderDetail, tickTimers } from './detail-view.js';
import { renderLog } from './event-log.js';
import { $, el, MAX_RECORDS, model, noteServerNow, orderedActors, pillClass, displayName, runtimeNow, secondsText } from './page-model.js';

let socket = null;
let retryMs = 500;
let renderQueued = false;

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
