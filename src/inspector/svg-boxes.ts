import type { Chart, ChartState, ChartTransition, TransitionKind } from '../machines/chart.js';
import { actionsText, commonAncestor, isWithin, lineage, stateByPath, stateDescriptions, triggerText } from '../machines/chart-queries.js';
import { layeredLayout, type Layout } from './layered-layout.js';
import { CHAR, FONT, headerHeightOf, LINE, PAD, TITLE_CHAR, WRAP } from './svg-metrics.js';

// What goes in which box of an SVG chart, and how big each is: every composite state is laid
// out on its own (its children, an initial dot, the arrows between them) and becomes one box
// in its parent's layout. Drawing the result is svg-render.ts.

/** Pseudo-nodes of a scope: the initial dot, and the composite itself as a source. */
export const INITIAL = '•initial';
export const SELF = '•self';

export interface Span {
  text: string;
  cls: 'ev' | 'guard' | 'act' | 'note';
}
export type TextLine = Span[];

export interface EdgeSpec {
  from: string;
  to: string;
  kind: TransitionKind | 'initial';
  label: TextLine[];
}

export type Box =
  | { kind: 'state'; state: ChartState; lines: string[]; width: number; height: number }
  | { kind: 'compound'; state: ChartState; lines: string[]; inner: Scope; width: number; height: number }
  | { kind: 'initial' | 'self'; width: number; height: number };

export interface Scope {
  boxes: Map<string, Box>;
  edges: EdgeSpec[];
  layout: Layout;
}

export function transitionText(t: ChartTransition): string {
  return [triggerText(t), ...t.targets.map((to) => `→ ${to}`), actionsText(t.actions)].filter(Boolean).join(' ');
}

export function layoutScope(chart: Chart, scope: ChartState): Scope {
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
  const headerHeight = headerHeightOf(lines);
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
