import type { ChartState } from '../machines/chart.js';
import type { Point, Rect } from './layered-layout.js';
import type { Box, EdgeSpec, Scope, TextLine } from './svg-boxes.js';
import { headerHeightOf, LINE, PAD, TITLE_FONT } from './svg-metrics.js';

// Laid-out boxes (svg-boxes.ts) as SVG elements. Every number goes through fmt(): the committed
// diagrams are compared byte for byte, so no floating-point noise may reach the text.

/** Arrows first, boxes over them, labels last so that no line crosses their text. */
export function renderScope(scope: Scope, origin: Point, ids: boolean): string[] {
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
export function fmt(value: number): string {
  const rounded = Math.round(value * 10) / 10;
  return String(rounded === 0 ? 0 : rounded);
}

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
