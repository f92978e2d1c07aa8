import { getAdjacencyMap, getShortestPaths, getSimplePaths } from '@xstate/graph';
import { getInitialSnapshot, getNextSnapshot, type AnyStateMachine, type EventFromLogic, type SnapshotFrom } from 'xstate';

// Paths through an abstract model machine, chosen with @xstate/graph and kept bounded: each
// path is a list of events a test can cause for real, with the model's state after each.
//
// `createTestModel` refuses machines with `invoke`/`after`, and the real machines use both
// (timers are their job). A model machine is small, pure and timer-free: "the clock moves past
// the backoff" is an event of the model, and the runner makes it happen with a ManualClock.

export interface ModelStep<TSnapshot, TEvent> {
  /** What the test does. */
  event: TEvent;
  /** The model's state once the event has happened: what the real actor must show. */
  snapshot: TSnapshot;
}

export interface ModelPath<TSnapshot, TEvent> {
  steps: Array<ModelStep<TSnapshot, TEvent>>;
}

export interface ModelPathsOptions<TMachine extends AnyStateMachine> {
  /** The events a test can cause in a state (concrete: with any data they carry). */
  events: (snapshot: SnapshotFrom<TMachine>) => ReadonlyArray<EventFromLogic<TMachine>>;
  /**
   * The state's identity: snapshots with the same key are one vertex of the graph (default: the
   * state value and the whole context). It must be exact: everything that decides what happens
   * next is in it, or a path could be built from events that do not apply to where it really is.
   */
  key?: (snapshot: SnapshotFrom<TMachine>) => string;
  /**
   * The abstract state that coverage counts (default: the key). A coarser one keeps the number of
   * paths small: one path per abstract state and abstract edge, not per exact one.
   */
  coverKey?: (snapshot: SnapshotFrom<TMachine>) => string;
  /** Identity of an event when a path is replayed (default: its JSON). */
  eventKey?: (event: EventFromLogic<TMachine>) => string;
  input?: unknown;
  /**
   * 'states': a shortest path to every abstract state. 'transitions' (default): also through
   * every abstract edge, as the shortest path to its source followed by the edge's event.
   */
  coverage?: 'states' | 'transitions';
  /**
   * Also every simple path (no vertex twice), when the graph has at most this many vertices
   * (`true`: 12). Their number grows exponentially with the graph: keep this for small models.
   */
  simplePaths?: boolean | number;
  /** At most this many paths, picked greedily for coverage (vertices first, then edges). */
  maxPaths?: number;
  /** Stop exploring past this many vertices (a model whose context grows without bound). */
  maxStates?: number;
}

export interface ModelGraphInfo {
  /** Vertices (exact states) reachable from the initial state. */
  states: number;
  /** Edges between different vertices. */
  transitions: number;
  /** States and edges as `coverKey` sees them (the coverage goals). */
  abstractStates: number;
  abstractTransitions: number;
  /** Whether simple paths were enumerated. */
  simple: boolean;
  /** Paths before the prefix pruning and the cap. */
  candidates: number;
  /** Abstract states and edges that the chosen paths visit. */
  coveredStates: number;
  coveredTransitions: number;
}

export interface ModelPaths<TSnapshot, TEvent> {
  paths: Array<ModelPath<TSnapshot, TEvent>>;
  info: ModelGraphInfo;
}

const DEFAULT_SIMPLE_LIMIT = 12;

function defaultKey(snapshot: { value: unknown; context: unknown }): string {
  return JSON.stringify({ value: snapshot.value, context: snapshot.context });
}

/**
 * Chooses paths through `machine`: shortest paths to every state (and, with 'transitions'
 * coverage, through every edge), simple paths when the graph is small; a path that is a prefix
 * of another is dropped (the longer one makes the same checks), then `maxPaths` caps the rest.
 * Every path is replayed on the machine, so its states are exactly the ones its events lead to.
 */
export function modelPaths<TMachine extends AnyStateMachine>(
  machine: TMachine,
  options: ModelPathsOptions<TMachine>,
): ModelPaths<SnapshotFrom<TMachine>, EventFromLogic<TMachine>> {
  type S = SnapshotFrom<TMachine>;
  type E = EventFromLogic<TMachine>;
  const key = (options.key ?? defaultKey) as (snapshot: S) => string;
  const cover = (options.coverKey ?? key) as (snapshot: S) => string;
  const eventKey = options.eventKey ?? ((event: E) => JSON.stringify(event));
  const maxStates = options.maxStates ?? 5_000;
  const traversal = {
    events: (snapshot: S) => ((snapshot as { status?: string }).status === 'active' ? [...options.events(snapshot)] : []),
    serializeState: (snapshot: S) => key(snapshot) as never,
    serializeEvent: (event: E) => eventKey(event) as never,
    // Visits, not vertices: each vertex is visited once per edge into it.
    limit: maxStates * 64,
    ...(options.input !== undefined ? { input: options.input } : {}),
  };
  // Typed loosely: @xstate/graph's generics want the machine's exact snapshot type.
  const logic = machine as unknown as Parameters<typeof getAdjacencyMap>[0];
  let adjacency: Record<string, { state: S; transitions: Record<string, { event: E; state: S }> }>;
  try {
    adjacency = getAdjacencyMap(logic, traversal as never) as typeof adjacency;
  } catch (error) {
    if ((error as Error).message !== 'Traversal limit exceeded') throw error;
    throw new Error(`the model has far more than ${maxStates} states: give a coarser key or bound its context`);
  }
  const vertices = Object.keys(adjacency);
  if (vertices.length > maxStates) throw new Error(`the model has ${vertices.length} states (more than ${maxStates}): give a coarser key`);

  // Shortest event sequence to every vertex.
  const toVertex = new Map<string, E[]>();
  for (const path of getShortestPaths(logic, traversal as never)) {
    // @xstate/graph's steps: the first is `xstate.init`, each next one is the event and the state after it.
    const events = path.steps.slice(1).map((step) => step.event as E);
    toVertex.set(key(path.state as S), events);
  }

  // Goals, in the abstract graph: reach every abstract state, take every abstract edge; each
  // by the shortest exact path that does it.
  const shortest = new Map<string, E[]>();
  const offer = (goal: string, events: E[]) => {
    const known = shortest.get(goal);
    if (!known || events.length < known.length) shortest.set(goal, events);
  };
  const abstractStates = new Set<string>();
  let exactEdges = 0;
  for (const from of vertices) {
    const fromCover = cover(adjacency[from]!.state);
    abstractStates.add(fromCover);
    offer(`s\u0001${fromCover}`, toVertex.get(from) ?? []);
    for (const [event, next] of Object.entries(adjacency[from]!.transitions)) {
      if (key(next.state) === from) continue; // an event the state ignores
      exactEdges++;
      const toCover = cover(next.state);
      if (toCover === fromCover || options.coverage === 'states') continue;
      offer(`e\u0001${fromCover}\u0001${event}\u0001${toCover}`, [...(toVertex.get(from) ?? []), next.event]);
    }
  }
  const abstractEdges = [...shortest.keys()].filter((goal) => goal.startsWith('e')).length;
  const candidates: E[][] = [...shortest.values()];

  const simpleLimit = options.simplePaths === true ? DEFAULT_SIMPLE_LIMIT : options.simplePaths || 0;
  const simple = simpleLimit > 0 && vertices.length <= simpleLimit;
  if (simple) {
    for (const path of getSimplePaths(logic, traversal as never)) {
      candidates.push(path.steps.slice(1).map((step) => step.event as E));
    }
  }

  // One of each, then drop the strict prefixes of others.
  const unique = new Map<string, E[]>();
  for (const events of candidates) {
    if (events.length === 0) continue;
    const id = events.map(eventKey).join('\u0000');
    if (!unique.has(id)) unique.set(id, events);
  }
  const ids = [...unique.keys()];
  const kept = ids.filter((id) => !ids.some((other) => other !== id && other.startsWith(id + '\u0000')));

  // Replay: the exact states along each path (a coarse key may have merged different histories).
  const initial = getInitialSnapshot(machine, options.input as never) as S;
  const replay = (events: E[]): ModelPath<S, E> => {
    let snapshot = initial;
    const steps: Array<ModelStep<S, E>> = [];
    for (const wanted of events) {
      const id = eventKey(wanted);
      const event = options.events(snapshot).find((candidate) => eventKey(candidate) === id);
      if (!event) throw new Error(`model replay: ${id} is not an event of ${key(snapshot)}: is the key exact?`);
      snapshot = getNextSnapshot(machine, snapshot as never, event as never) as S;
      steps.push({ event, snapshot });
    }
    return { steps };
  };
  const replayed = kept.map((id) => replay(unique.get(id)!));

  // Coverage of a path: the vertices it visits and the edges it takes.
  const coverageOf = (path: ModelPath<S, E>): { states: Set<string>; edges: Set<string> } => {
    const states = new Set<string>([cover(initial)]);
    const taken = new Set<string>();
    let from = cover(initial);
    for (const step of path.steps) {
      const to = cover(step.snapshot);
      states.add(to);
      if (to !== from) taken.add(`${from}\u0001${eventKey(step.event)}\u0001${to}`);
      from = to;
    }
    return { states, edges: taken };
  };
  let chosen = replayed;
  if (options.maxPaths !== undefined && replayed.length > options.maxPaths) {
    const covered = { states: new Set<string>(), edges: new Set<string>() };
    const pool = replayed.map((path) => ({ path, cover: coverageOf(path) }));
    chosen = [];
    while (chosen.length < options.maxPaths && pool.length > 0) {
      let best = 0;
      let bestScore = -1;
      pool.forEach((entry, i) => {
        let score = 0;
        for (const s of entry.cover.states) if (!covered.states.has(s)) score += 1_000;
        for (const e of entry.cover.edges) if (!covered.edges.has(e)) score += 1;
        // Ties: the shorter path (cheaper to run).
        const better = score > bestScore || (score === bestScore && entry.path.steps.length < pool[best]!.path.steps.length);
        if (better) {
          best = i;
          bestScore = score;
        }
      });
      if (bestScore <= 0) break;
      const [entry] = pool.splice(best, 1);
      chosen.push(entry!.path);
      for (const s of entry!.cover.states) covered.states.add(s);
      for (const e of entry!.cover.edges) covered.edges.add(e);
    }
  }
  const coveredStates = new Set<string>();
  const coveredEdges = new Set<string>();
  for (const path of chosen) {
    const covering = coverageOf(path);
    for (const s of covering.states) coveredStates.add(s);
    for (const e of covering.edges) coveredEdges.add(e);
  }
  return {
    paths: chosen,
    info: {
      states: vertices.length,
      transitions: exactEdges,
      abstractStates: abstractStates.size,
      abstractTransitions: abstractEdges,
      simple,
      candidates: unique.size,
      coveredStates: coveredStates.size,
      coveredTransitions: coveredEdges.size,
    },
  };
}
