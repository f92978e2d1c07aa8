// The selected actor's machine chart: drawn by the server, fetched once per machine, its current
// state highlighted; a click shows it at its own size.
import { $, el, model } from './page-model.js';

const charts = new Map();
let shownChart = null;

/** Nothing is selected: the next chart shown is drawn again. */
export function forgetChart() {
  shownChart = null;
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

export function showChart(actor) {
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

export function zoomChart(zoomed) {
  const box = $('chart');
  box.classList.toggle('zoomed', zoomed);
  box.title = zoomed ? 'click: fit the chart to the panel' : 'click: the chart at its own size';
  const svg = box.querySelector('svg');
  if (!svg) return;
  svg.style.width = zoomed && svg.dataset.width ? `${svg.dataset.width}px` : '';
  delete box.dataset.shown;
  if (zoomed) highlight();
}

export function highlight() {
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
