import type { SerializedError } from '../protocol/errors.js';
import type { HostRequestEvent, Signal } from '../protocol/host-requests.js';
import type { ResolvedRestartPolicy } from '../protocol/specs.js';
import { liveOf } from './pipeline-splice.js';

// The pipeline machine's input and context, what it decides from its exits, and the requests
// it sends the host (signals, spawns, the release of a node's stdin).

export interface PipelineInput {
  id: string;
  wsId: string;
  label: string;
  nodeLabels: string[];
  upstreamLabels: string[];
  discern: 'any' | 'last';
  policy: ResolvedRestartPolicy;
  at: number;
  strategy?: 'one_for_all' | 'rest_for_one';
  restartSets?: Record<string, string[]>;
  strategyNote?: string | null;
}

export interface NodeExit {
  code: number | null;
  signal: string | null;
  status: number;
}

export interface PipelineContext extends Omit<PipelineInput, 'at'> {
  attempt: number;
  /** Run id of each node in the current attempt. */
  runs: Record<string, string>;
  exits: Record<string, NodeExit>;
  restarts: number;
  pendingBackoffMs: number;
  backoffDeadline: number | null;
  attemptStartedAt: number | null;
  stampedAt: number;
  graceMs: number;
  graceDeadline: number | null;
  spawnError: SerializedError | null;
  /** Why it was told to stop: its own stop(), or its workspace's reason. */
  stopReason: string | null;
  stopDetail: string | null;
  /** rest_for_one: the nodes being restarted while the others run on; null otherwise. */
  splicing?: string[] | null;
  spliceCause?: string | null;
}

/** Whether the exits so far say the pipeline failed, by its discern rule. */
export function pipelineFailed(context: Pick<PipelineContext, 'exits' | 'nodeLabels' | 'upstreamLabels' | 'discern'>): boolean {
  const failedNode = (label: string) => {
    const exit = context.exits[label];
    if (!exit || exit.status === 0) return false;
    // An upstream node killed by SIGPIPE: its reader had finished, as `yes | head -1` in bash.
    return !(exit.signal === 'SIGPIPE' && context.upstreamLabels.includes(label));
  };
  if (context.discern === 'last') return failedNode(context.nodeLabels[context.nodeLabels.length - 1]!);
  return context.nodeLabels.some(failedNode);
}

export const DEFAULT_PIPELINE_GRACE_MS = 1000;

export function signalRuns(context: PipelineContext, which: Signal): HostRequestEvent[] {
  return liveOf(context, context.splicing ?? []).map(({ runId }) => ({ type: 'HOST_REQUEST', request: { type: 'signalRun', wsId: context.wsId, runId, signal: which } }));
}

export function releaseOf(context: PipelineContext, label: string): HostRequestEvent {
  return { type: 'HOST_REQUEST', request: { type: 'releasePipelineInput', wsId: context.wsId, pipelineId: context.id, label } };
}

export function signal(context: PipelineContext, which: Signal): HostRequestEvent {
  return { type: 'HOST_REQUEST', request: { type: 'signalPipeline', wsId: context.wsId, pipelineId: context.id, signal: which } };
}
