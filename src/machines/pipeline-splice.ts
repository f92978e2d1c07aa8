import type { NodeExitedEvent } from '../protocol/machine-events.js';

// rest_for_one on a pipeline graph, as pure decisions: which nodes a node's failure restarts
// (itself and everything downstream), and whether a splice is worth it (something upstream, or
// beside, still runs; otherwise the whole pipeline restarts as under one_for_all).

export interface SpliceContext {
  nodeLabels: string[];
  upstreamLabels: string[];
  discern: 'any' | 'last';
  exits: Record<string, { status: number; signal: string | null }>;
  /** Absent in snapshots saved before pipeline strategies existed: one_for_all. */
  strategy?: 'one_for_all' | 'rest_for_one';
  restartSets?: Record<string, string[]>;
}

/** Whether this exit is a failure of its node, by the pipeline's discern rule. */
export function nodeExitFailed(context: SpliceContext, event: Pick<NodeExitedEvent, 'label' | 'status' | 'signal'>): boolean {
  if (event.status === 0) return false;
  // An upstream node killed by SIGPIPE: its reader had finished (`yes | head -1`).
  if (event.signal === 'SIGPIPE' && context.upstreamLabels.includes(event.label)) return false;
  return context.discern === 'any' || event.label === context.nodeLabels[context.nodeLabels.length - 1];
}

/** The nodes a failure of `label` restarts under rest_for_one, in node order. */
export function restartSetOf(context: SpliceContext, label: string): string[] {
  return context.restartSets?.[label] ?? [label];
}

/**
 * A failure of `event.label` restarts only part of the pipeline: rest_for_one, the exit failed,
 * and some node outside its restart set still runs (with none left, all of it restarts).
 */
export function startsSplice(context: SpliceContext, event: Pick<NodeExitedEvent, 'label' | 'status' | 'signal'>): boolean {
  if (context.strategy !== 'rest_for_one' || !nodeExitFailed(context, event)) return false;
  const restarted = new Set(restartSetOf(context, event.label));
  return context.nodeLabels.some((label) => !restarted.has(label) && context.exits[label] === undefined);
}

/** Nodes of the restart set whose run has not ended yet. */
export function liveOf(context: SpliceContext & { runs: Record<string, string> }, labels: readonly string[]): Array<{ label: string; runId: string }> {
  return labels.filter((label) => context.exits[label] === undefined && context.runs[label] !== undefined).map((label) => ({ label, runId: context.runs[label]! }));
}

/** For why(): `'mid' failed (exited 1): restarting mid, sink; src runs on`. */
export function spliceCause(context: SpliceContext, event: Pick<NodeExitedEvent, 'label' | 'status' | 'signal'>): string {
  const set = restartSetOf(context, event.label);
  const others = context.nodeLabels.filter((label) => !set.includes(label) && context.exits[label] === undefined);
  const how = event.signal ? `killed by ${event.signal}` : `exited ${event.status}`;
  return `'${event.label}' failed (${how}): restarting ${set.join(', ')}; ${others.join(', ')} run${others.length === 1 ? 's' : ''} on`;
}
