// The panel of the selected actor: its chart, timers, facts, output, why() trail or stats.
import { forgetChart, showChart } from './chart-view.js';
import { $, clockText, displayName, el, model, offset, pillClass, runtimeNow, secondsText } from './page-model.js';

export function renderDetail() {
  const actor = model.selected === null ? undefined : model.actors.get(model.selected);
  $('detail-empty').hidden = actor !== undefined;
  $('detail-body').hidden = actor === undefined;
  if (!actor) {
    forgetChart();
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
  const detail = model.detail && model.detail.id === actor.id ? model.detail : null;
  renderFacts(actor, detail);
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

/** Where a command runs, when not on the runtime's machine (a Slurm node): from its latest run. */
function nodeOf(actor, detail) {
  if (actor.machine !== 'command') return null;
  return detail?.output?.find((run) => run.node)?.node ?? null;
}

function renderFacts(actor, detail) {
  const dl = $('facts');
  const node = nodeOf(actor, detail);
  const entries = [['since', clockText(actor.since)], ['status', actor.status], ...(node ? [['node', node]] : []), ...Object.entries(actor.facts)];
  dl.replaceChildren(...entries.flatMap(([k, v]) => [el('dt', '', k), el('dd', '', String(v))]));
}

const OUTPUT_LINES = 40;

/** Each run's last lines (one run for a command, one per node for a pipeline, with its Slurm node); stderr marked. */
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
      if (runs.length > 1) block.append(el('div', 'output-label', run.node ? `${run.label} · on ${run.node}` : run.label));
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
export function tickTimers() {
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
