import { restartSets, splicesNodes, type PipelineSpec } from '../../protocol/pipeline-spec.js';
import type { WorkspaceEntry } from '../registry/registry.js';

// Which strategy a pipeline's actor applies: rest_for_one only where the runtime can splice a
// restarted node back in (a tapped pipeline on this machine: the runtime holds every edge's
// ends); elsewhere the whole pipeline restarts, and why() says why.

export interface PipelineStrategy {
  strategy: 'one_for_all' | 'rest_for_one';
  restartSets?: Record<string, string[]>;
  strategyNote: string | null;
}

export function canSplice(ws: Pick<WorkspaceEntry, 'placementKind'>, spec: PipelineSpec): boolean {
  return splicesNodes(spec) && ws.placementKind === 'local';
}

export function pipelineStrategy(ws: Pick<WorkspaceEntry, 'placementKind'>, spec: PipelineSpec): PipelineStrategy {
  if (canSplice(ws, spec)) return { strategy: 'rest_for_one', restartSets: restartSets(spec), strategyNote: null };
  if (spec.supervision?.strategy !== 'rest_for_one') return { strategy: 'one_for_all', strategyNote: null };
  const why = spec.tap === true
    ? `its workspace is placed on ${ws.placementKind}, where the runtime does not hold the edges`
    : 'without tap: true the edges are kernel pipes between the nodes, and a node that ends takes its pipes with it';
  return { strategy: 'one_for_all', strategyNote: `rest_for_one acts as one_for_all: ${why}` };
}
