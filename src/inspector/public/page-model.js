// The page's model of the runtime (actors, recent records, the selection) and what every part of
// the page uses: element helpers, the runtime's clock as this browser estimates it, actor names.
//
// Clocks: every deadline and time stamp is on the runtime's clock, which may not be this
// browser's (another machine's wall clock, or a ManualClock in tests). Each message carries
// the runtime's `now` when it was sent; `now - Date.now()` on arrival underestimates the
// offset by the message's transit time, so the page keeps the largest of the recent
// estimates. With a manual clock time moves only when the runtime says so: countdowns then
// show the time left at the runtime's last word, and do not run on their own.

export const MAX_RECORDS = 1000;
const OFFSET_SAMPLES = 20;

export const model = {
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

export const $ = (id) => document.getElementById(id);

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ── clock ────────────────────────────────────────────────────────────────────────

export function noteServerNow(now) {
  if (typeof now !== 'number') return;
  model.lastNow = now;
  model.offsets.push(now - Date.now());
  if (model.offsets.length > OFFSET_SAMPLES) model.offsets.shift();
}

export function offset() {
  return model.offsets.length === 0 ? 0 : Math.max(...model.offsets);
}

/** The runtime's clock now, as well as this page can tell. */
export function runtimeNow() {
  if (model.manual) return model.lastNow ?? Date.now();
  return Date.now() + offset();
}

export function clockText(ms) {
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function secondsText(ms) {
  return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
}

// ── actors ───────────────────────────────────────────────────────────────────────

export function pillClass(actor) {
  if (!actor.live && actor.status === 'active') return 'pill pill-ended';
  const state = actor.state;
  // Up is not ready: a command waiting for its probe, or for its dependencies, is not green yet.
  if (['backoff', 'restarting', 'reaping', 'stopping', 'starting', 'up', 'ending', 'waiting'].some((s) => state.startsWith(s))) return 'pill pill-hot';
  if (['failed', 'gaveUp', 'lost', 'unmet'].includes(state) || actor.status === 'error') return 'pill pill-bad';
  if (['running', 'succeeded', 'exited'].includes(state)) return 'pill pill-good';
  return 'pill';
}

export function displayName(actor) {
  return actor.label || actor.id.slice(-8);
}

/** Workspaces in order of appearance, each followed by its commands and pipelines. */
export function orderedActors() {
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
