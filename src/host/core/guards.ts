import { ShumaError } from '../../protocol/errors.js';
import { stateName } from '../../protocol/state-value.js';
import type { PipelineEntry, WorkspaceEntry } from '../registry/registry.js';
import type { CoreParts } from './core-parts.js';

// The checks every public operation starts with: the runtime is open, the workspace exists
// and can still run something. Each says what was wrong and how to go on.

export function ensureOpen(core: CoreParts): void {
  if (core.closed) {
    throw new ShumaError('RUNTIME_CLOSED', 'the runtime was shut down: create a new one with createRuntime()');
  }
}

export function workspaceEntry(core: CoreParts, wsId: string): WorkspaceEntry {
  const ws = typeof wsId === 'string' ? core.registry.get(wsId) : undefined;
  if (!ws) {
    throw new ShumaError(
      'WORKSPACE_NOT_FOUND',
      `no workspace has id ${JSON.stringify(wsId)}: it never existed or was stopped; listWorkspaces() shows the live ones`,
    );
  }
  return ws;
}

export function pipelineEntry(core: CoreParts, id: string): PipelineEntry {
  const pipeline = typeof id === 'string' ? core.pipelines.get(id) : undefined;
  if (!pipeline) {
    throw new ShumaError('PIPELINE_NOT_FOUND', `no pipeline has id ${JSON.stringify(id)}: it never existed or its workspace was stopped`);
  }
  return pipeline;
}

export function ensureRunning(core: CoreParts, ws: WorkspaceEntry): void {
  if (core.registry.isPlacing(ws.id) && !ws.stopRequested && !ws.hostStop && !ws.failure) {
    // As while a local workspace starts: a run must not wait on Slurm's queue (up to
    // allocationWaitMs, or a refusal that only createWorkspace() reports).
    throw new ShumaError(
      'WORKSPACE_STARTING',
      `workspace ${ws.id} (${ws.label}) is still being placed: ${ws.placement.kind} has not granted its allocation yet; wait for createWorkspace() to resolve before running commands in it`,
    );
  }
  if (!ws.started.settled && !ws.stopRequested && !ws.hostStop && !ws.failure) {
    throw new ShumaError(
      'WORKSPACE_STARTING',
      `workspace ${ws.id} (${ws.label}) is still starting: wait for createWorkspace() to resolve before running commands in it`,
    );
  }
  if (ws.stopRequested || ws.hostStop || ws.failure || stateName(ws.snapshot.value) !== 'running') {
    throw new ShumaError(
      'WORKSPACE_STOPPED',
      `workspace ${ws.id} (${ws.label}) is ${ws.failure ? 'failed' : 'stopping'}: create a new workspace to run more commands`,
    );
  }
}
