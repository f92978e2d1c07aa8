import type { Chart, ChartState, ChartTransition, TransitionKind } from './chart.js';

// Questions about a described chart that every renderer asks (the Mermaid source, the state
// table, the inspector's SVG): where a state sits, what a transition's label says.

export function stateByPath(chart: Chart, path: string): ChartState {
  const state = path === '' ? chart.root : chart.states.find((s) => s.path === path);
  if (!state) throw new Error(`no state ${JSON.stringify(path)} in chart ${chart.id}`);
  return state;
}

/** Whether `path` is `ancestor` or lies inside it. */
export function isWithin(path: string, ancestor: string): boolean {
  return ancestor === '' || path === ancestor || path.startsWith(`${ancestor}.`);
}

/** The state's path, then its parent's, up to the root (`''`). */
export function lineage(chart: Chart, path: string): string[] {
  const chain: string[] = [];
  for (let at: string | null = path; at !== null; at = stateByPath(chart, at).parent) chain.push(at);
  return chain;
}

/** The deepest state containing both paths. */
export function commonAncestor(chart: Chart, a: string, b: string): string {
  return lineage(chart, a).find((candidate) => isWithin(b, candidate)) ?? '';
}

/** A top-level final state ends the actor: nothing is handled there any more. */
export function endsMachine(state: ChartState): boolean {
  return state.type === 'final' && state.parent === '';
}

/**
 * Table columns: events in order of first appearance (states in definition order), then
 * delays, then `always`, then the handlers of the machine root, which apply everywhere.
 */
export function eventColumns(chart: Chart): string[] {
  const group: Record<TransitionKind, number> = { event: 0, after: 1, always: 2 };
  const rank = (t: ChartTransition): number => (t.source === '' ? 3 : group[t.kind]);
  const ordered = [...chart.transitions].map((t, index) => ({ t, index }));
  ordered.sort((x, y) => rank(x.t) - rank(y.t) || x.index - y.index);
  return [...new Set(ordered.map(({ t }) => t.event))];
}

/** `EXITED [and(failed, mayRestart)]`, `after(backoff)`, `always [graceOver]`. */
export function triggerText(t: ChartTransition): string {
  return t.guard === null ? t.event : `${t.event} [${t.guard}]`;
}

export function actionsText(actions: readonly string[]): string {
  return actions.length === 0 ? '' : `/ ${actions.join(', ')}`;
}

/** Lines shown inside a state's box: entry/exit actions and targetless transitions. */
export function stateDescriptions(chart: Chart, state: ChartState): string[] {
  const lines: string[] = [];
  if (state.entry.length > 0) lines.push(`entry ${actionsText(state.entry)}`);
  if (state.exit.length > 0) lines.push(`exit ${actionsText(state.exit)}`);
  for (const t of chart.transitions) {
    if (t.source === state.path && t.targets.length === 0) lines.push(`${triggerText(t)} ${actionsText(t.actions)}`.trim());
  }
  return lines;
}
