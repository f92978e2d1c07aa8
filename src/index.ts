export { createRuntime } from './create-runtime.js';
export type { Runtime, WorkspaceInfo } from './host/runtime.js';
export type { RuntimeOptions, HealthCounts, CreateWorkspaceOptions } from './host/core/runtime-core.js';
export type { Workspace, LogOptions, StopOptions } from './host/workspace-handle.js';
export type { Command, CommandInfo } from './host/command-handle.js';
export type { Pipeline, PipelineNodeInfo } from './host/pipeline-handle.js';
export type { FlowInfo } from './host/flows/flow-hub.js';
export type { PipelineResult, PipelineExit } from './host/registry/registry.js';
export type { PipelineSpec, PipelineEdge, PipelineNode, PipelineStream } from './protocol/pipeline-spec.js';
export type { ExitInfo } from './host/processes/exit-info.js';
export type { PlacementSpec, PlacementInfo } from './protocol/placement-spec.js';
export type { WorkspaceStats, QuotaReport } from './protocol/stats.js';
export type { WhyEntry } from './host/core/why-trail.js';
export type { ApplySpec, ApplyWorkspaceSpec, ApplyOptions, ApplyReport, ApplyAction, FilePipelineSpec } from './protocol/apply-spec.js';
export type { CommandDescription, RunSummary } from './protocol/command-description.js';
export type { StopResult } from './host/registry/registry.js';
export type { RuntimeClock } from './host/core/clock.js';
export { ShumaError, isShumaError, ERROR_CODES, type ErrorCode } from './protocol/errors.js';
export type {
  WorkspaceSpec,
  CommandSpec,
  RestartPolicy,
  QuotaAction,
  ResourceLimits,
} from './protocol/specs.js';
export type { ActorSnapshot, InspectionRecord, InspectionKind, StateValue } from './protocol/actor-records.js';
