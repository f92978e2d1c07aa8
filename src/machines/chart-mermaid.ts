import type { Chart, ChartState } from './chart.js';
import { actionsText, commonAncestor, stateByPath, stateDescriptions, triggerText } from './chart-queries.js';

// A described chart as Mermaid `stateDiagram-v2` source (docs/diagrams/*.mmd). Deterministic:
// the same chart always gives the same text, so the generated files compare byte for byte.

/**
 * Mermaid `stateDiagram-v2` source. Transitions without a target and entry/exit actions are
 * state descriptions (lines inside the box); the root's handlers are a note on the initial
 * state. `comment` becomes a `%%` line.
 */
export function toMermaid(chart: Chart, comment?: string): string {
  const lines = ['stateDiagram-v2'];
  if (comment !== undefined) lines.push(`  %% ${comment}`);
  lines.push(...mermaidScope(chart, chart.root, 1));
  lines.push(...mermaidRootNote(chart));
  return `${lines.join('\n')}\n`;
}

/**
 * Mermaid ids are global and may not contain `-`, `.` or spaces: nested states get their
 * whole path, joined with `_`.
 */
function mermaidId(path: string): string {
  return path.replace(/[^A-Za-z0-9_]/g, '_');
}

/** Mermaid ends a description at `:` or `;`, reads `#` as a comment and `"` as a quote. */
function mermaidText(text: string): string {
  return text.replace(/[:;#"]/g, ' ');
}

function mermaidScope(chart: Chart, scope: ChartState, depth: number): string[] {
  const pad = '  '.repeat(depth);
  const lines: string[] = [];
  if (scope.initial !== null) lines.push(`${pad}[*] --> ${mermaidId(scope.initial)}`);
  scope.children.forEach((childPath, i) => {
    // Mermaid separates the regions of a parallel state with `--`.
    if (scope.type === 'parallel' && i > 0) lines.push(`${pad}--`);
    lines.push(...mermaidState(chart, stateByPath(chart, childPath), depth));
  });
  for (const t of chart.transitions) {
    for (const target of t.targets) {
      if (t.source === '' || mermaidScopeOf(chart, t.source, target) !== scope.path) continue;
      const label = mermaidText([triggerText(t), actionsText(t.actions), t.reenter ? '(reenter)' : ''].filter(Boolean).join(' '));
      lines.push(`${pad}${mermaidId(t.source)} --> ${mermaidId(target)} : ${label}`);
    }
  }
  for (const childPath of scope.children) {
    if (stateByPath(chart, childPath).type === 'final') lines.push(`${pad}${mermaidId(childPath)} --> [*]`);
  }
  return lines;
}

function mermaidState(chart: Chart, state: ChartState, depth: number): string[] {
  const pad = '  '.repeat(depth);
  const id = mermaidId(state.path);
  const descriptions = stateDescriptions(chart, state).map(mermaidText);
  if (state.children.length > 0) {
    // A composite's descriptions would replace its title: they go in the title instead.
    const title = [mermaidText(state.key), ...descriptions].join('<br>');
    return [`${pad}state "${title}" as ${id} {`, ...mermaidScope(chart, state, depth + 1), `${pad}}`];
  }
  // Declared with its name first: Mermaid shows a lone description instead of the name.
  return [`${pad}state "${mermaidText(state.key)}" as ${id}`, ...descriptions.map((text) => `${pad}${id} : ${text}`)];
}

/**
 * A transition is written in the block of the deepest composite holding both ends. Mermaid
 * puts a state in the block that first names it, and a composite named inside its own block
 * would become a second state, hence the parents.
 */
function mermaidScopeOf(chart: Chart, source: string, target: string): string {
  const parentOf = (path: string): string => stateByPath(chart, path).parent ?? '';
  return commonAncestor(chart, parentOf(source), parentOf(target));
}

/** The root's handlers, which no single arrow can show, as a note on the initial state. */
function mermaidRootNote(chart: Chart): string[] {
  const handlers = chart.transitions.filter((t) => t.source === '');
  if (handlers.length === 0 || chart.root.initial === null) return [];
  return [
    `  note right of ${mermaidId(chart.root.initial)}`,
    '    In every state',
    ...handlers.map((t) => `    ${[triggerText(t), actionsText(t.actions), ...t.targets.map((to) => `→ ${to}`)].filter(Boolean).join(' ')}`),
    '  end note',
  ];
}
