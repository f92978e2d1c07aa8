// The event log: the records kept, filtered by kind and actor, newest first, one line each.
import { $, clockText, displayName, el, model, orderedActors } from './page-model.js';

const MAX_LOG_ROWS = 300;

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

export function renderLog() {
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
