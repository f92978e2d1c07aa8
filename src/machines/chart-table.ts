import type { Chart, ChartState, ChartTransition } from './chart.js';
import { actionsText, endsMachine, eventColumns, lineage } from './chart-queries.js';

// A described chart as a state × event table (docs/diagrams/*.md): for every state, what each
// event does there, so a missing case shows as a `—` a reader can question.

/**
 * A Markdown table: one row per state (root excluded), one column per event. A cell lists
 * what the event does there, in the order XState tries it: the state's own transitions
 * first, then those of each ancestor, and `—` where the event is ignored.
 */
export function toStateTable(chart: Chart): string {
  const columns = eventColumns(chart);
  const header = ['state', 'type', ...columns];
  const rows = chart.states.map((state) => [
    `\`${state.path}\``,
    state.type,
    ...columns.map((event) => tableCell(chart, state, event)),
  ]);
  return [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.map(escapeCell).join(' | ')} |`).join('\n') + '\n';
}

function tableCell(chart: Chart, state: ChartState, event: string): string {
  if (endsMachine(state)) return '—';
  const lines = lineage(chart, state.path).flatMap((owner) =>
    chart.transitions
      .filter((t) => t.source === owner && t.event === event)
      .map((t) => cellLine(t, owner === state.path ? null : owner)),
  );
  return lines.length === 0 ? '—' : lines.join('<br>');
}

function cellLine(t: ChartTransition, inheritedFrom: string | null): string {
  const where = t.targets.length === 0 ? 'stay' : t.targets.map((to) => `→ ${to}`).join(', ');
  const origin = inheritedFrom === null ? '' : inheritedFrom === '' ? '(machine-wide)' : `(from ${inheritedFrom})`;
  return [t.guard === null ? '' : `[${t.guard}]`, where, t.reenter ? '(reenter)' : '', actionsText(t.actions), origin]
    .filter(Boolean)
    .join(' ');
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|');
}
