import type { AnyStateMachine } from 'xstate';

// A plain, serialisable description of a machine's state chart, read from the machine's own
// definition (not from `machine.toJSON()`, which drops `always` transitions). The documents
// drawn from it: chart-mermaid.ts (Mermaid source), chart-table.ts (state × event table), the
// inspector's svg-chart.ts; what they all ask of it, chart-queries.ts. Everything here is
// deterministic: the same machine always gives the same chart, so the generated files can be
// compared with the committed ones.

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
