import type { ActorSnapshot } from '../protocol/actor-records.js';
import { observe } from './observers.js';
import { checkCallOptions } from '../protocol/checks.js';
import type { FlowInfo } from './flows/flow-hub.js';
import type { PipelineEntry, PipelineResult, StopResult } from './registry/registry.js';

export type { PipelineResult };
import type { RuntimeCore } from './core/runtime-core.js';
import type { WhyEntry } from './core/why-trail.js';
import type { StopOptions } from './workspace-handle.js';

export interface PipelineNodeInfo {
  label: string;
  pid: number;
  /** The node's run in its workspace: `ws.logs(commandId)` reads what it wrote. */
  commandId: string;
}

/** An actor handle on one pipeline. */
export interface Pipeline {
  readonly id: string;
  readonly label: string;
  readonly workspace: string;
  /** The nodes of the current attempt (a restart starts new processes with new ids). */
  readonly nodes: PipelineNodeInfo[];
  getSnapshot(): ActorSnapshot | null;
  subscribe(observer: (snapshot: ActorSnapshot) => void): () => void;
  flows(): Promise<FlowInfo[]>;
  /** The pipeline's causal trail: attempts, failures, backoffs, stops. */
  why(): Promise<WhyEntry[]>;
  stop(options?: StopOptions): Promise<StopResult>;
  /** Settles when the pipeline ends for good: succeeded, failed, gave up or stopped. */
  readonly done: Promise<PipelineResult>;
}

export class PipelineHandle implements Pipeline {
  readonly id: string;
  readonly label: string;
  readonly workspace: string;
  readonly done: Promise<PipelineResult>;

  constructor(
    private readonly core: RuntimeCore,
    private readonly entry: PipelineEntry,
  ) {
    this.id = entry.id;
    this.label = entry.label;
    this.workspace = entry.wsId;
    this.done = entry.done.promise;
  }

  get nodes(): PipelineNodeInfo[] {
    return this.entry.currentRuns.map((run) => ({ label: run.label, pid: run.pid, commandId: run.id }));
  }

  getSnapshot(): ActorSnapshot | null {
    return this.entry.snapshot;
  }

  subscribe(observer: (snapshot: ActorSnapshot) => void): () => void {
    return observe(this.entry.observers, observer);
  }

  async why(): Promise<WhyEntry[]> {
    this.core.ensureOpen();
    return this.core.why.get(this.id);
  }

  async flows(): Promise<FlowInfo[]> {
    this.core.ensureOpen();
    return this.core.flows.list(this.entry);
  }

  async stop(input?: StopOptions): Promise<StopResult> {
    this.core.ensureOpen();
    const options = checkCallOptions(input, 'options', ['graceMs']);
    return this.core.stopPipeline(this.id, options.graceMs);
  }
}
