import type { Chart, ChartState, ChartTransition, TransitionKind } from '../machines/chart.js';
import { actionsText, commonAncestor, isWithin, lineage, stateByPath, stateDescriptions, triggerText } from '../machines/chart-queries.js';
import { layeredLayout, type Layout, type Point, type Rect } from './layered-layout.js';

// A state chart drawn as SVG without a browser: every composite state is laid out on its
// own (its children, an initial dot, the arrows between them) and becomes one box in its
// parent's layout. Text is monospace so its width can be computed rather than measured.

const FONT = 12;
const TITLE_FONT = 13;
const CHAR = FONT * 0.61;
const TITLE_CHAR = TITLE_FONT * 0.61;
const LINE = 16;
const PAD = 10;
const MARGIN = 20;
/** Action lists wrap at commas past this many characters. */
const WRAP = 36;
const FONT_FAMILY = 'DejaVu Sans Mono, Menlo, Consolas, monospace';

/** Pseudo-nodes of a scope: the initial dot, and the composite itself as a source. */
const INITIAL = '•initial';
const SELF = '•self';

interface Span {
  text: string;
  cls: 'ev' | 'guard' | 'act' | 'note';
}
type TextLine = Span[];

interface EdgeSpec {
  from: string;
  to: string;
  kind: TransitionKind | 'initial';
  label: TextLine[];
}

type Box =
  | { kind: 'state'; state: ChartState; lines: string[]; width: number; height: number }
  | { kind: 'compound'; state: ChartState; lines: string[]; inner: Scope; width: number; height: number }
  | { kind: 'initial' | 'self'; width: number; height: number };

interface Scope {
  boxes: Map<string, Box>;
  edges: EdgeSpec[];
  layout: Layout;
}

export interface SvgOptions {
  title: string;
  subtitle: string;
  /**
   * Wraps each state's box in `<g data-state="path">`: the inspector finds the current state's
   * box by it to highlight it. Off for the committed diagrams, whose text it would change.
   */
  stateIds?: boolean;
}

export function chartToSvg(chart: Chart, options: SvgOptions): string {
  const root = layoutScope(chart, chart.root);
  const header = headerLines(chart, options);
  const headerHeight = header.length * LINE + PAD * 2;
  const width = Math.max(root.layout.width, ...header.map((l) => l.text.length * CHAR)) + MARGIN * 2;
  const height = headerHeight + root.layout.height + MARGIN * 2;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${fmt(width)}" height="${fmt(height)}" viewBox="0 0 ${fmt(width)} ${fmt(height)}" font-family="${FONT_FAMILY}" font-size="${FONT}">`,
    `<title>${escapeXml(options.title)}</title>`,
    STYLE,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ...header.map((line, i) => `<text x="${MARGIN}" y="${fmt(MARGIN + LINE * (i + 1))}" class="${line.cls}">${escapeXml(line.text)}</text>`),
    ...renderScope(root, { x: MARGIN, y: MARGIN + headerHeight }, options.stateIds ?? false),
    '</svg>',
    '',
  ].join('\n');
}

const STYLE = `<defs>
<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#334155"/></marker>
<style>
.state{fill:#eef2ff;stroke:#4338ca;stroke-width:1.2}
.compound{fill:#f8fafc;stroke:#475569;stroke-width:1.2}
.final{fill:none;stroke:#4338ca;stroke-width:1}
.sep{stroke:#a5b4fc;stroke-width:1}
.edge{fill:none;stroke:#334155;stroke-width:1.2}
.edge.after{stroke-dasharray:6 4}
.edge.always{stroke-dasharray:2 3}
.label-bg{fill:#ffffff;fill-opacity:0.85}
.name{font-weight:bold;font-size:${TITLE_FONT}px;fill:#1e1b4b}
.desc{fill:#334155;font-size:11px}
.ev{font-weight:bold;fill:#0f172a}
.guard{fill:#b45309}
.act{fill:#475569}
.note{fill:#64748b;font-style:italic}
.title{font-weight:bold;font-size:16px;fill:#0f172a}
.subtitle{fill:#64748b;font-size:11px}
.global{fill:#0f172a}
</style>
</defs>`;

interface HeaderLine {
  text: string;
  cls: 'title' | 'subtitle' | 'global';
}

function headerLines(chart: Chart, options: SvgOptions): HeaderLine[] {
  const handlers = chart.transitions.filter((t) => t.source === '');
  return [
    { text: options.title, cls: 'title' },
    { text: options.subtitle, cls: 'subtitle' },
    { text: 'solid: event · dashed: after(delay) · dotted: always · double border: final state', cls: 'subtitle' },
    ...handlers.map((t): HeaderLine => ({ text: `In every state: ${transitionText(t)}`, cls: 'global' })),
  ];
}

function transitionText(t: ChartTransition): string {
  return [triggerText(t), ...t.targets.map((to) => `→ ${to}`), actionsText(t.actions)].filter(Boolean).join(' ');
}

// ---------------------------------------------------------------------------------------
// Layout.

function layoutScope(chart: Chart, scope: ChartState): Scope {
  const edges = scopeEdges(chart, scope);
  const boxes = new Map<string, Box>();
  // The initial dot first: the layout ranks from the first node it is given.
  if (scope.initial !== null) boxes.set(INITIAL, { kind: 'initial', width: 12, height: 12 });
  if (edges.some((e) => e.from === SELF)) boxes.set(SELF, { kind: 'self', width: 12, height: 12 });
  for (const path of scope.children) boxes.set(path, stateBox(chart, stateByPath(chart, path)));
  const layout = layeredLayout(
    [...boxes].map(([id, box]) => ({ id, width: box.width, height: box.height })),
    edges.map((e) => ({ from: e.from, to: e.to, label: e.label.length === 0 ? null : labelSize(e.label) })),
  );
  return { boxes, edges, layout };
}

function stateBox(chart: Chart, state: ChartState): Box {
  const lines = [...stateDescriptions(chart, state), ...selfLoopLines(chart, state)];
  const textWidth = Math.max(state.key.length * TITLE_CHAR, ...lines.map((l) => l.length * CHAR * (11 / FONT)));
  const headerHeight = LINE + PAD + (lines.length > 0 ? 6 + lines.length * LINE : 0);
  if (state.children.length > 0) {
    const inner = layoutScope(chart, state);
    const width = Math.max(textWidth, inner.layout.width) + PAD * 2;
    return { kind: 'compound', state, lines, inner, width, height: headerHeight + inner.layout.height + PAD * 2 };
  }
  // A final state gets a second border inside the first.
  const inset = state.type === 'final' ? 4 : 0;
  return { kind: 'state', state, lines, width: Math.max(64, textWidth + PAD * 2 + inset * 2), height: headerHeight + PAD / 2 + inset * 2 };
}

/**
 * Where an arrow is drawn: inside its source when it targets one of the source's own
 * descendants, otherwise in the deepest composite holding both ends.
 */
function scopeOf(chart: Chart, source: string, target: string): string {
  if (target !== source && isWithin(target, source)) return source;
  const parentOf = (path: string): string => stateByPath(chart, path).parent ?? '';
  return commonAncestor(chart, parentOf(source), parentOf(target));
}

/** The box of `scope`'s layout that stands for `path`: the child holding it, or the scope. */
function lift(chart: Chart, scope: string, path: string): string {
  if (path === scope) return SELF;
  return lineage(chart, path).find((p) => stateByPath(chart, p).parent === scope) ?? SELF;
}

interface Arrow {
  t: ChartTransition;
  target: string;
  scope: string;
  from: string;
  to: string;
}

/** Every transition with a target, one arrow per target; the root's own handlers are text. */
function arrows(chart: Chart): Arrow[] {
  return chart.transitions
    .filter((t) => t.source !== '')
    .flatMap((t) =>
      t.targets.map((target) => {
        const scope = scopeOf(chart, t.source, target);
        return { t, target, scope, from: lift(chart, scope, t.source), to: lift(chart, scope, target) };
      }),
    );
}

function scopeEdges(chart: Chart, scope: ChartState): EdgeSpec[] {
  const edges: EdgeSpec[] = [];
  if (scope.initial !== null) edges.push({ from: INITIAL, to: scope.initial, kind: 'initial', label: [] });
  for (const arrow of arrows(chart)) {
    if (arrow.scope !== scope.path || arrow.from === arrow.to) continue;
    edges.push({ from: arrow.from, to: arrow.to, kind: arrow.t.kind, label: arrowLabel(chart, arrow) });
  }
  return edges;
}

/** A transition that leaves and re-enters one box is written inside it, not drawn. */
function selfLoopLines(chart: Chart, state: ChartState): string[] {
  return arrows(chart)
    .filter((a) => a.from === state.path && a.to === state.path)
    .map((a) => `↻ ${a.t.source === state.path ? '' : `from ${a.t.source}: `}${transitionText(a.t)}${a.t.reenter ? ' (reenter)' : ''}`);
}

/** Event and guard, then the actions wrapped at commas; where a box stands for a descendant, say which. */
function arrowLabel(chart: Chart, arrow: Arrow): TextLine[] {
  const { t } = arrow;
  const first: TextLine = [];
  if (arrow.from === SELF) first.push({ text: `(${stateByPath(chart, t.source).key}) `, cls: 'note' });
  else if (arrow.from !== t.source) first.push({ text: `${t.source}: `, cls: 'note' });
  first.push({ text: t.event, cls: 'ev' });
  if (t.guard !== null) first.push({ text: ` [${t.guard}]`, cls: 'guard' });
  if (arrow.to !== arrow.target) first.push({ text: ` → ${arrow.target}`, cls: 'note' });
  const lines = [first, ...wrapActions(t.actions).map((text): TextLine => [{ text, cls: 'act' }])];
  if (t.reenter) lines[lines.length - 1]?.push({ text: ' (reenter)', cls: 'note' });
  return lines;
}

function wrapActions(actions: readonly string[]): string[] {
  const lines: string[] = [];
  let line = '/';
  actions.forEach((action, i) => {
    const piece = `${action}${i < actions.length - 1 ? ',' : ''}`;
    if (line.length > 1 && line.length + 1 + piece.length > WRAP) {
      lines.push(line);
      line = `  ${piece}`;
    } else {
      line = `${line} ${piece}`;
    }
  });
  return actions.length === 0 ? [] : [...lines, line];
}

function lineLength(line: TextLine): number {
  return line.reduce((n, span) => n + span.text.length, 0);
}

/** Room for the text, 6px clear of the edge running down the label's left side. */
function labelSize(lines: readonly TextLine[]): { width: number; height: number } {
  return { width: Math.max(...lines.map(lineLength)) * CHAR + 10, height: lines.length * LINE + 4 };
}

// ---------------------------------------------------------------------------------------
// Rendering.

/** Arrows first, boxes over them, labels last so that no line crosses their text. */
function renderScope(scope: Scope, origin: Point, ids: boolean): string[] {
  const at = (id: string): Rect => {
    const rect = scope.layout.nodes.get(id);
    if (!rect) throw new Error(`svg: no box for ${id}`);
    return { ...rect, x: rect.x + origin.x, y: rect.y + origin.y };
  };
  const placed = scope.edges.map((edge, i) => ({ edge, route: scope.layout.edges[i] }));
  return [
    ...placed.map(({ edge, route }) => (route ? renderPath(route.points, edge.kind, origin) : '')),
    ...[...scope.boxes].flatMap(([id, box]) => renderBox(box, at(id), ids)),
    ...placed.flatMap(({ edge, route }) => (route?.label ? renderLabel(edge.label, shift(route.label, origin)) : [])),
  ].filter(Boolean);
}

function renderBox(box: Box, rect: Rect, ids: boolean): string[] {
  const cx = rect.x + rect.width / 2;
  const cy = rect.y + rect.height / 2;
  switch (box.kind) {
    case 'initial':
      return [`<circle cx="${fmt(cx)}" cy="${fmt(cy)}" r="6" fill="#0f172a"/>`];
    case 'self':
      return [`<circle cx="${fmt(cx)}" cy="${fmt(cy)}" r="5" fill="#ffffff" stroke="#334155" stroke-width="1.5"/>`];
    case 'state':
      return tagState(box.state, renderState(box.state, box.lines, rect), ids);
    case 'compound':
      return [
        ...tagState(box.state, renderStateFrame(box.state, box.lines, rect, 'compound'), ids),
        ...renderScope(box.inner, { x: rect.x + (rect.width - box.inner.layout.width) / 2, y: rect.y + headerHeightOf(box.lines) + PAD }, ids),
      ];
  }
}

/** A state's own elements (not its children's), grouped under its path when asked. */
function tagState(state: ChartState, elements: string[], ids: boolean): string[] {
  return ids ? [`<g data-state="${escapeXml(state.path)}">`, ...elements, '</g>'] : elements;
}

function headerHeightOf(lines: readonly string[]): number {
  return LINE + PAD + (lines.length > 0 ? 6 + lines.length * LINE : 0);
}

function renderState(state: ChartState, lines: readonly string[], rect: Rect): string[] {
  const out = renderStateFrame(state, lines, rect, 'state');
  if (state.type === 'final') {
    out.splice(1, 0, `<rect x="${fmt(rect.x + 4)}" y="${fmt(rect.y + 4)}" width="${fmt(rect.width - 8)}" height="${fmt(rect.height - 8)}" rx="5" class="final"/>`);
  }
  return out;
}

/** The box, its name, and under a rule its entry/exit actions and internal transitions. */
function renderStateFrame(state: ChartState, lines: readonly string[], rect: Rect, cls: 'state' | 'compound'): string[] {
  const inset = state.type === 'final' ? 4 : 0;
  const top = rect.y + inset;
  const nameY = top + PAD + TITLE_FONT - 1;
  const name =
    cls === 'state'
      ? `<text x="${fmt(rect.x + rect.width / 2)}" y="${fmt(nameY)}" text-anchor="middle" class="name">${escapeXml(state.key)}</text>`
      : `<text x="${fmt(rect.x + PAD)}" y="${fmt(nameY)}" class="name">${escapeXml(state.key)}</text>`;
  const out = [`<rect x="${fmt(rect.x)}" y="${fmt(rect.y)}" width="${fmt(rect.width)}" height="${fmt(rect.height)}" rx="8" class="${cls}"/>`, name];
  if (lines.length > 0) {
    const ruleY = top + LINE + PAD;
    out.push(`<line x1="${fmt(rect.x + inset)}" y1="${fmt(ruleY)}" x2="${fmt(rect.x + rect.width - inset)}" y2="${fmt(ruleY)}" class="sep"/>`);
    lines.forEach((line, i) => {
      out.push(`<text x="${fmt(rect.x + PAD + inset)}" y="${fmt(ruleY + 4 + LINE * (i + 1) - 4)}" class="desc">${escapeXml(line)}</text>`);
    });
  }
  return out;
}

/** Straight down through the bands, S-curves with vertical tangents between them. */
function renderPath(points: readonly Point[], kind: EdgeSpec['kind'], origin: Point): string {
  const [first, ...rest] = points.map((p) => ({ x: p.x + origin.x, y: p.y + origin.y }));
  if (!first) return '';
  let d = `M${fmt(first.x)},${fmt(first.y)}`;
  let previous = first;
  for (const p of rest) {
    const midY = (previous.y + p.y) / 2;
    d += Math.abs(p.x - previous.x) < 0.5 ? ` L${fmt(p.x)},${fmt(p.y)}` : ` C${fmt(previous.x)},${fmt(midY)} ${fmt(p.x)},${fmt(midY)} ${fmt(p.x)},${fmt(p.y)}`;
    previous = p;
  }
  const cls = kind === 'after' || kind === 'always' ? `edge ${kind}` : 'edge';
  return `<path d="${d}" class="${cls}" marker-end="url(#arrow)"/>`;
}

function renderLabel(lines: readonly TextLine[], rect: Rect): string[] {
  const out = [`<rect x="${fmt(rect.x + 3)}" y="${fmt(rect.y)}" width="${fmt(rect.width - 3)}" height="${fmt(rect.height)}" class="label-bg"/>`];
  lines.forEach((line, i) => {
    const spans = line.map((span) => `<tspan class="${span.cls}">${escapeXml(span.text)}</tspan>`).join('');
    out.push(`<text x="${fmt(rect.x + 6)}" y="${fmt(rect.y + LINE * (i + 1) - 2)}" xml:space="preserve">${spans}</text>`);
  });
  return out;
}

function shift(rect: Rect, by: Point): Rect {
  return { ...rect, x: rect.x + by.x, y: rect.y + by.y };
}

/** One decimal, and never `-0`: the output must not depend on floating-point noise. */
function fmt(value: number): string {
  const rounded = Math.round(value * 10) / 10;
  return String(rounded === 0 ? 0 : rounded);
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
