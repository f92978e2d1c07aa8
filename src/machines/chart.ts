import type { AnyStateMachine } from 'xstate';

// A plain, serialisable description of a machine's state chart, read from the machine's own
// definition (not from `machine.toJSON()`, which drops `always` transitions), and the two
// documents generated from it: Mermaid `stateDiagram-v2` source and a state × event table.
// Everything here is deterministic: the same machine always gives the same text, so the
// generated files can be compared with the committed ones.

export type StateType = 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
export type TransitionKind = 'event' | 'after' | 'always';

export interface ChartState {
  /** Dotted path from the machine root (`reaping.terminating`); `''` for the root itself. */
  path: string;
  key: string;
  /** Path of the parent state; null only for the root. */
  parent: string | null;
  type: StateType;
  /** Path of the initial child, for compound states. */
  initial: string | null;
  entry: string[];
  exit: string[];
  /** Child paths, in definition order. */
  children: string[];
}

export interface ChartTransition {
  /** Path of the state that declares the transition (`''`: the machine root, so every state). */
  source: string;
  /** What triggers it: an event type, `after(delay)` or `always`. */
  event: string;
  kind: TransitionKind;
  /** Target paths; empty for a transition that runs actions without leaving the state. */
  targets: string[];
  guard: string | null;
  actions: string[];
  reenter: boolean;
}

export interface Chart {
  id: string;
  root: ChartState;
  /** Every state but the root, parents before children, siblings in definition order. */
  states: ChartState[];
  /** By source (same order as `states`, root first), then in priority order per event. */
  transitions: ChartTransition[];
}

// The few members of XState's StateNode and TransitionDefinition read here. Typing them
// structurally keeps XState's `any`-typed generics out of this module.
interface NodeLike {
  readonly key: string;
  readonly id: string;
  readonly path: readonly string[];
  readonly type: StateType;
  readonly states: Readonly<Record<string, NodeLike>>;
  readonly transitions: ReadonlyMap<string, readonly TransitionLike[]>;
  readonly always?: readonly TransitionLike[] | undefined;
  readonly entry: readonly unknown[];
  readonly exit: readonly unknown[];
  readonly initial?: { readonly target: readonly NodeLike[] } | undefined;
}

interface TransitionLike {
  readonly target?: readonly NodeLike[] | undefined;
  readonly guard?: unknown;
  readonly actions: readonly unknown[];
  readonly reenter: boolean;
}

const AFTER_PREFIX = 'xstate.after.';

/** Describes a machine's states and transitions. */
export function describeMachine(machine: AnyStateMachine): Chart {
  const root: NodeLike = machine.root;
  const nodes = walk(root);
  return {
    id: machine.id,
    root: describeState(root),
    states: nodes.slice(1).map(describeState),
    transitions: nodes.flatMap((node) => describeTransitions(node, machine.id)),
  };
}

/** The node and its descendants, parents first. */
function walk(node: NodeLike): NodeLike[] {
  return [node, ...Object.values(node.states).flatMap(walk)];
}

function pathOf(node: NodeLike): string {
  return node.path.join('.');
}

function describeState(node: NodeLike): ChartState {
  const path = pathOf(node);
  const initialTarget = node.type === 'compound' ? node.initial?.target[0] : undefined;
  return {
    path,
    key: node.path.length === 0 ? node.id : node.key,
    parent: node.path.length === 0 ? null : node.path.slice(0, -1).join('.'),
    type: node.type,
    initial: initialTarget ? pathOf(initialTarget) : null,
    entry: describeActions(node.entry),
    exit: describeActions(node.exit),
    children: Object.values(node.states).map(pathOf),
  };
}

function describeTransitions(node: NodeLike, machineId: string): ChartTransition[] {
  const fromEvents = [...node.transitions].flatMap(([descriptor, list]) =>
    list.map((t) => describeTransition(node, t, eventLabel(node, machineId, descriptor), kindOf(descriptor))),
  );
  // Eventless transitions live on `stateNode.always`, not in `transitions`.
  const fromAlways = (node.always ?? []).map((t) => describeTransition(node, t, 'always', 'always'));
  return [...fromEvents, ...fromAlways];
}

function describeTransition(node: NodeLike, t: TransitionLike, event: string, kind: TransitionKind): ChartTransition {
  return {
    source: pathOf(node),
    event,
    kind,
    targets: (t.target ?? []).map(pathOf),
    guard: describeGuard(t.guard),
    actions: describeActions(t.actions),
    reenter: t.reenter,
  };
}

function kindOf(descriptor: string): TransitionKind {
  return descriptor.startsWith(AFTER_PREFIX) ? 'after' : 'event';
}

/**
 * The name a reader knows an event by. XState turns `after: { backoff: … }` on the state
 * `command.backoff` into the event `xstate.after.backoff.command.backoff`: the delay's name
 * is what is left once the prefix and the state's id are taken off.
 */
function eventLabel(node: NodeLike, machineId: string, descriptor: string): string {
  const suffix = `.${node.id}`;
  if (descriptor.startsWith(AFTER_PREFIX) && descriptor.endsWith(suffix)) {
    const delay = descriptor.slice(AFTER_PREFIX.length, -suffix.length);
    return `after(${/^\d+$/.test(delay) ? `${delay}ms` : delay})`;
  }
  // `onDone` listens to `xstate.done.state.<state id>`; ids start with the machine's.
  const done = 'xstate.done.state.';
  if (descriptor.startsWith(done)) {
    const stateId = descriptor.slice(done.length);
    return `done(${stateId.startsWith(`${machineId}.`) ? stateId.slice(machineId.length + 1) : stateId})`;
  }
  return descriptor;
}

/** `mayRestart`, `and(failed, mayRestart)`, `not(x)`, `inline` for an anonymous function. */
export function describeGuard(guard: unknown): string | null {
  if (guard === undefined || guard === null) return null;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') {
    // XState's and/or/not return functions named after themselves, carrying their operands.
    const operands: unknown = Reflect.get(guard, 'guards');
    if (Array.isArray(operands)) return `${guard.name}(${operands.map((g) => describeGuard(g) ?? '?').join(', ')})`;
    const stateValue: unknown = Reflect.get(guard, 'stateValue');
    if (stateValue !== undefined) return `stateIn(${JSON.stringify(stateValue)})`;
    return 'inline';
  }
  return typeOf(guard) ?? 'unknown';
}

function describeActions(actions: readonly unknown[]): string[] {
  return actions.map(describeAction).filter((name): name is string => name !== null);
}

/** An action's name; null for the timers XState itself adds to implement `after`. */
export function describeAction(action: unknown): string | null {
  if (typeof action === 'string') return action;
  if (typeof action === 'function') {
    const type: unknown = Reflect.get(action, 'type');
    if (isAfterTimer(action, type)) return null;
    // Built-in action creators (assign, raise, sendTo, emit…) are tagged `xstate.<name>`.
    if (typeof type === 'string' && type.startsWith('xstate.')) return type.slice('xstate.'.length);
    return 'inline';
  }
  // A parameterised action shows its parameters: `report(ready)`.
  const params: unknown = typeof action === 'object' && action !== null ? Reflect.get(action, 'params') : undefined;
  if (params && typeof params === 'object' && !Array.isArray(params)) {
    return `${typeOf(action) ?? 'unknown'}(${Object.values(params).map(String).join(', ')})`;
  }
  return typeOf(action) ?? 'unknown';
}

function isAfterTimer(action: object, type: unknown): boolean {
  if (type === 'xstate.raise') return typeOf(Reflect.get(action, 'event'))?.startsWith(AFTER_PREFIX) ?? false;
  if (type === 'xstate.cancel') {
    const sendId: unknown = Reflect.get(action, 'sendId');
    return typeof sendId === 'string' && sendId.startsWith(AFTER_PREFIX);
  }
  return false;
}

/** The `type` of a `{ type, params }` object. */
function typeOf(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return null;
  const type: unknown = Reflect.get(value, 'type');
  return typeof type === 'string' ? type : null;
}

// ---------------------------------------------------------------------------------------
// Queries shared by the renderers.

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

// ---------------------------------------------------------------------------------------
// Mermaid.

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

// ---------------------------------------------------------------------------------------
// State × event table.

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
