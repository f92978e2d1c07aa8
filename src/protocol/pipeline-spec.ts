import { checkObject, checkText, describe, fail } from './checks.js';
import { ShumaError } from './errors.js';
import type { CommandSpec, RestartPolicy } from './specs.js';
import { validateCommandSpec, validateRestartPolicy } from './validate-spec.js';

export type PipelineStream = 'stdout' | 'stderr';

export interface PipelineEdge {
  from: string;
  to: string;
  /** Which output of `from` feeds the stdin of `to` (default stdout). */
  stream?: PipelineStream;
}

export type PipelineNode = CommandSpec & { label: string };

export interface PipelineSpec {
  label: string;
  /** The id of the workspace the pipeline runs in. */
  workspace: string;
  nodes: PipelineNode[];
  edges: PipelineEdge[];
  /** Edge bytes pass through the runtime: metered, and readable on a flow socket. */
  tap?: boolean;
  /** 'any' (default): failed if any node failed; 'last': only the last node's exit counts. */
  discern?: 'any' | 'last';
  /** Restart the whole pipeline when all nodes ended and it failed. */
  restart?: RestartPolicy;
  /**
   * How a failed node is restarted (with `restart.onFailure`): `one_for_all` (default) waits for
   * every node to end and restarts them all; `rest_for_one` restarts the failed node and every
   * node downstream of it at once, upstream nodes running on. It needs `tap: true` (the runtime
   * holds both ends of every edge and splices the new node in); without, it is `one_for_all`,
   * with a warning. See docs/pipeline-strategies.md.
   */
  supervision?: PipelineSupervision;
}

export interface PipelineSupervision {
  strategy: 'one_for_all' | 'rest_for_one';
}

export const PIPELINE_FIELDS = ['label', 'workspace', 'nodes', 'edges', 'tap', 'discern', 'restart', 'supervision'] as const;
export const PIPELINE_SUPERVISION_FIELDS = ['strategy'] as const;
export const PIPELINE_STRATEGIES = ['one_for_all', 'rest_for_one'] as const;
export const EDGE_FIELDS = ['from', 'to', 'stream'] as const;

/**
 * Checks a pipeline spec's shape and graph: unique labels, edges between existing nodes, no
 * self-edge, no cycle, one writer per stdin, and a fan-out only when tapped (without the
 * runtime copying the bytes, one pipe has one reader).
 */
export function validatePipelineSpec(value: unknown): PipelineSpec {
  const o = checkObject(value, 'spec', PIPELINE_FIELDS);
  checkText(o.label, 'label');
  checkText(o.workspace, 'workspace');
  if (!Array.isArray(o.nodes) || o.nodes.length === 0) {
    fail('nodes', `must be a non-empty array of commands (got ${describe(o.nodes)})`);
  }
  const labels = new Map<string, number>();
  o.nodes.forEach((node: unknown, i: number) => {
    validateCommandSpec(node, `nodes[${i}]`);
    // A node's start and end are its pipeline's: the graph's edges order it, not readiness.
    for (const field of ['ready', 'dependsOn', 'group'] as const) {
      if ((node as Record<string, unknown>)[field] !== undefined) {
        fail(`nodes[${i}].${field}`, `is for commands run with ws.run(), not pipeline nodes: a pipeline starts all its nodes at once over its pipes`);
      }
    }
    const label = (node as { label?: unknown }).label;
    checkText(label, `nodes[${i}].label`);
    if (labels.has(label as string)) {
      fail(`nodes[${i}].label`, `'${label as string}' is already the label of nodes[${labels.get(label as string)}]: labels must be unique`);
    }
    labels.set(label as string, i);
  });
  if (!Array.isArray(o.edges)) fail('edges', `must be an array of { from, to, stream? } (got ${describe(o.edges)})`);
  if (o.tap !== undefined && typeof o.tap !== 'boolean') fail('tap', `must be true or false (got ${describe(o.tap)})`);
  if (o.discern !== undefined && o.discern !== 'any' && o.discern !== 'last') {
    fail('discern', `must be 'any' or 'last' (got ${describe(o.discern)})`);
  }
  if (o.restart !== undefined) validateRestartPolicy(o.restart, 'restart');
  if (o.supervision !== undefined) validatePipelineSupervision(o.supervision);

  const writerOfStdin = new Map<string, number>();
  const readersOfOutput = new Map<string, number>();
  o.edges.forEach((edge: unknown, i: number) => {
    const e = checkObject(edge, `edges[${i}]`, EDGE_FIELDS);
    checkText(e.from, `edges[${i}].from`);
    checkText(e.to, `edges[${i}].to`);
    const known = [...labels.keys()].join(', ');
    if (!labels.has(e.from as string)) fail(`edges[${i}].from`, `names no node ('${e.from as string}'); nodes: ${known}`);
    if (!labels.has(e.to as string)) fail(`edges[${i}].to`, `names no node ('${e.to as string}'); nodes: ${known}`);
    if (e.from === e.to) fail(`edges[${i}]`, `connects '${e.from as string}' to itself: a node cannot read its own output`);
    if (e.stream !== undefined && e.stream !== 'stdout' && e.stream !== 'stderr') {
      fail(`edges[${i}].stream`, `must be 'stdout' or 'stderr' (got ${describe(e.stream)})`);
    }
    const previous = writerOfStdin.get(e.to as string);
    if (previous !== undefined) {
      fail(`edges[${i}].to`, `'${e.to as string}' already reads from edges[${previous}]: a stdin has one writer`);
    }
    writerOfStdin.set(e.to as string, i);
    const output = `${e.from as string}.${(e.stream as string | undefined) ?? 'stdout'}`;
    const readers = (readersOfOutput.get(output) ?? 0) + 1;
    readersOfOutput.set(output, readers);
    if (readers > 1 && o.tap !== true) {
      fail(
        `edges[${i}]`,
        `is a second reader of ${output}: a fan-out needs the runtime to copy the bytes; set tap: true`,
      );
    }
  });
  const cycle = findCycle([...labels.keys()], o.edges as PipelineEdge[]);
  if (cycle) fail('edges', `form a cycle (${cycle.join(' → ')}): a pipeline must be acyclic`);
  return o as unknown as PipelineSpec;
}

function validatePipelineSupervision(value: unknown): void {
  const o = checkObject(value, 'supervision', PIPELINE_SUPERVISION_FIELDS);
  if (o.strategy === 'one_for_one') {
    fail(
      'supervision.strategy',
      "'one_for_one' cannot apply to a pipeline: a node restarted alone would leave its readers at the end of their input; use 'rest_for_one' (it restarts the node and everything downstream)",
    );
  }
  if (!PIPELINE_STRATEGIES.includes(o.strategy as never)) {
    fail('supervision.strategy', `must be one of ${PIPELINE_STRATEGIES.map((s) => `'${s}'`).join(', ')} (got ${describe(o.strategy)})`);
  }
}

/** Labels a failure of each node restarts under rest_for_one: itself and everything downstream, in node order. */
export function restartSets(spec: Pick<PipelineSpec, 'nodes' | 'edges'>): Record<string, string[]> {
  const readers = new Map<string, string[]>();
  for (const edge of spec.edges) readers.set(edge.from, [...(readers.get(edge.from) ?? []), edge.to]);
  const sets: Record<string, string[]> = {};
  for (const node of spec.nodes) {
    const reached = new Set([node.label]);
    const queue = [node.label];
    while (queue.length > 0) for (const next of readers.get(queue.shift()!) ?? []) if (!reached.has(next)) (reached.add(next), queue.push(next));
    sets[node.label] = spec.nodes.map((n) => n.label).filter((label) => reached.has(label));
  }
  return sets;
}

/** Whether the runtime holds the stdin of every node to splice a restarted one back in. */
export function splicesNodes(spec: Pick<PipelineSpec, 'tap' | 'supervision'>): boolean {
  return spec.tap === true && spec.supervision?.strategy === 'rest_for_one';
}

function findCycle(labels: string[], edges: PipelineEdge[]): string[] | null {
  const next = new Map<string, string[]>(labels.map((l) => [l, []]));
  for (const edge of edges) next.get(edge.from)!.push(edge.to);
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (label: string): string[] | null => {
    if (state.get(label) === 'done') return null;
    if (state.get(label) === 'open') return [...path.slice(path.indexOf(label)), label];
    state.set(label, 'open');
    path.push(label);
    for (const to of next.get(label)!) {
      const found = visit(to);
      if (found) return found;
    }
    path.pop();
    state.set(label, 'done');
    return null;
  };
  for (const label of labels) {
    const found = visit(label);
    if (found) return found;
  }
  return null;
}

const SAVED_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Saved pipeline names become file names later: nothing in one may reach a path. */
export function checkSavedName(name: unknown): string {
  if (typeof name !== 'string' || !SAVED_NAME.test(name)) {
    throw new ShumaError(
      'INVALID_SPEC',
      `name ${describe(name)} is not a valid saved-pipeline name: use 1 to 63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit`,
      { field: 'name' },
    );
  }
  return name;
}
