import { ShumaError, serializeError } from '../../protocol/errors.js';
import type { StopReason } from '../../protocol/machine-events.js';
import type { ToWorker } from '../../protocol/worker-messages.js';
import { ULID_PATTERN } from '../../protocol/checks.js';
import { DEFAULT_GRACE_MS, type WorkspaceSpec } from '../../protocol/specs.js';
import { validateGraceMs, validateWorkspaceSpec } from '../../protocol/validate-spec.js';
import type { PlacementInfo } from '../../protocol/placement-spec.js';
import type { PreparedWorkspace } from '../placement/placement.js';
import { placementKindOf } from '../placement/placements.js';
import { LazyMap, LazySet } from '../registry/lazy-collections.js';
import { lazyDeferred } from '../registry/lazy-deferred.js';
import type { StopResult, StopScope, WorkspaceEntry } from '../registry/registry.js';
import { structuredCloneSpec } from '../spawn/launch-plan.js';
import { settlePipeline } from './commands-and-pipelines.js';
import type { CoreParts } from './core-parts.js';
import { ensureOpen } from './guards.js';
import type { CreateWorkspaceOptions } from './runtime-options.js';
import { CommandMap } from '../registry/command-map.js';
import { createWhilePlacing } from './create-while-placing.js';

// A workspace from its creation to its end: prepared (cwd, placement), hosted on a worker,
// stopped (asked, by its TTL, by a fault), emptied by its placement, then forgotten.

export async function createWorkspace(core: CoreParts, input: WorkspaceSpec, options: CreateWorkspaceOptions = {}): Promise<WorkspaceEntry> {
  ensureOpen(core);
  const spec = validateWorkspaceSpec(structuredCloneSpec(input));
  const id = options.id === undefined ? core.newId() : checkGivenId(core, options.id);
  const slow = core.placements.get(placementKindOf(spec));
  if (slow?.hostsWhilePreparing) return createWhilePlacing(core, spec, id, slow, { entry: newWorkspaceEntry, message: createMessage, announced });
  const ws = await prepareWorkspace(core, spec, id, core.clock.now());
  if (options.id !== undefined) {
    try {
      checkGivenId(core, options.id);
    } catch (error) {
      // Taken by a concurrent create meanwhile: what was prepared (an allocation, a cgroup) goes back.
      await core.placementOf(ws).teardown(ws);
      throw error;
    }
  }
  return hostWorkspace(core, ws, createMessage(ws));
}

export function createMessage(ws: WorkspaceEntry): Extract<ToWorker, { type: 'createWorkspace' }> {
  const { spec } = ws;
  return {
    type: 'createWorkspace',
    wsId: ws.id,
    label: ws.label,
    ttlMs: spec.ttlMs ?? null,
    at: ws.createdAt,
    supervision: spec.supervision ?? null,
    groups: spec.groups ?? null,
  };
}

/** The environment every workspace starts from: the runtime's own (open-state.ts adds the state mark). */
export function runtimeEnv(): Readonly<Record<string, string>> {
  return Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/** A caller-given id (to keep ids across restarts) must be a ULID nobody uses. */
function checkGivenId(core: CoreParts, id: unknown): string {
  if (typeof id !== 'string' || !ULID_PATTERN.test(id)) {
    throw new ShumaError('INVALID_ARGUMENT', `id must be a ULID (26 Crockford base-32 characters, got ${JSON.stringify(id)})`);
  }
  if (core.registry.get(id)) {
    throw new ShumaError('INVALID_ARGUMENT', `id ${id} is already the id of a live workspace: ids are unique`);
  }
  return id;
}

/** Everything a workspace needs before its actor exists: cwd checked, its placement prepared, warnings. */
export async function prepareWorkspace(
  core: CoreParts,
  spec: WorkspaceSpec,
  id: string,
  createdAt: number,
  resume?: PlacementInfo,
): Promise<WorkspaceEntry> {
  const cwd = await core.cwdChecks.check(spec.cwd ?? process.cwd());
  const placementKind = placementKindOf(spec);
  const placement = core.placements.get(placementKind);
  if (!placement) throw new ShumaError('INVALID_SPEC', `this runtime has no placement '${placementKind}'`);
  const prepared = await placement.prepare(spec, id, resume);
  if (core.closed) await (prepared.release ? prepared.release() : prepared.cgroup?.remove());
  ensureOpen(core);
  return newWorkspaceEntry(core, spec, id, createdAt, cwd, prepared);
}

/** The main thread's record of a workspace, its actor not yet hosted. */
export function newWorkspaceEntry(
  core: CoreParts,
  spec: WorkspaceSpec,
  id: string,
  createdAt: number,
  cwd: string,
  prepared: PreparedWorkspace,
): WorkspaceEntry {
  const { cgroup, warnings } = prepared;
  return {
    kind: 'workspace',
    id,
    wsId: id,
    groups: new LazySet(),
    label: spec.label,
    spec,
    cwd,
    // Without variables of its own, the runtime's environment is shared, not copied (10,000
    // workspaces held 10,000 copies).
    env: spec.env === undefined || Object.keys(spec.env).length === 0 ? core.baseEnv : { ...core.baseEnv, ...spec.env },
    warnings,
    placementKind: placementKindOf(spec),
    placement: prepared.info ?? { kind: 'local' },
    cgroup,
    oomKillsSeen: 0,
    worker: core.pool.place(),
    createdAt,
    snapshot: { value: 'created', status: 'active', context: {} },
    persisted: null,
    changes: 0,
    observers: new LazySet(),
    commands: new CommandMap(),
    pipelines: new LazyMap(),
    started: lazyDeferred(),
    stopped: lazyDeferred(),
    stopRequested: false,
    hostStop: null,
    stopResult: null,
    pendingSpawns: 0,
    failure: null,
  };
}

/** Registers the workspace and hosts its actor (new, or restored); resolves once it runs. */
export async function hostWorkspace(
  core: CoreParts,
  ws: WorkspaceEntry,
  message: Extract<ToWorker, { type: 'createWorkspace' | 'restoreWorkspace' }>,
): Promise<WorkspaceEntry> {
  core.registry.add(ws);
  core.pool.send(ws.worker, message);
  await ws.started.promise;
  return announced(core, ws, message.type === 'restoreWorkspace');
}

/** The workspace runs: saved from now on, and said in the log. */
export function announced(core: CoreParts, ws: WorkspaceEntry, restored: boolean): WorkspaceEntry {
  core.state?.markDirty(ws);
  core.logger.info(
    { ws: ws.id, label: ws.label, ttlMs: ws.spec.ttlMs ?? null, warnings: ws.warnings, restored },
    restored ? 'workspace restored' : 'workspace created',
  );
  for (const warning of ws.warnings) core.logger.warn({ ws: ws.id, label: ws.label }, warning);
  return ws;
}

export async function stopWorkspace(core: CoreParts, wsId: string, graceMs: number | undefined, reason: StopReason): Promise<StopResult> {
  const grace = validateGraceMs(graceMs) ?? DEFAULT_GRACE_MS;
  const ws = core.registry.get(wsId);
  if (!ws) {
    throw new ShumaError(
      'WORKSPACE_NOT_FOUND',
      `workspace ${JSON.stringify(wsId)} is already stopped (or never existed): there is nothing left to stop`,
    );
  }
  requestStop(core, ws, grace, reason);
  return ws.stopped.promise;
}

/** Tells the actor to stop; `finish` ends it once the actor says it stopped. */
export function requestStop(core: CoreParts, ws: WorkspaceEntry, graceMs: number, reason: StopReason): void {
  ws.stopRequested = true;
  if (ws.failure) return;
  const groupsEmpty = holdsNothing(core, ws);
  core.toWorkspace(ws, { type: 'STOP', at: core.clock.now(), graceMs, reason, ...(groupsEmpty ? { groupsEmpty: true } : {}) });
}

/**
 * A workspace that never ran anything has nothing to reap: its actor hears that with its stop,
 * not a round trip later (its signal request, the reaper's look, GROUPS_EMPTY).
 */
export function holdsNothing(core: CoreParts, ws: WorkspaceEntry): boolean {
  return ws.commands.size === 0 && ws.pipelines.size === 0 && core.placementOf(ws).holdsNothing?.(ws) === true;
}

/** The workspace's actor failed: nothing supervises its processes any more, none may outlive it. */
export function onActorError(core: CoreParts, ws: WorkspaceEntry, error: ReturnType<typeof serializeError>): void {
  if (ws.failure) return;
  ws.failure = error;
  core.logger.error({ ws: ws.id, label: ws.label, err: error }, 'workspace actor failed; killing its processes');
  const failure = new ShumaError('ACTOR_FAILED', `workspace ${ws.id} (${ws.label}) failed: ${error.message}`);
  ws.started.reject(failure);
  for (const command of ws.commands.values()) command.firstRun.reject(failure);
  core.placementOf(ws).signal(ws, 'SIGKILL');
}

/** Nothing of a stopping workspace or pipeline is left: its actor hears it. */
export function onScopeEmpty(core: CoreParts, scope: StopScope, result: StopResult): void {
  const ws = core.registry.get(scope.wsId);
  if (!ws) return;
  if (scope.kind === 'pipeline') {
    const pipeline = ws.pipelines.get(scope.id);
    if (!pipeline) return;
    pipeline.stopResult = result;
    core.toChild(ws, pipeline.id, { type: 'PIPELINE_EMPTY', at: core.clock.now() });
    return;
  }
  ws.stopResult = result;
  // The placement lets go (the cgroup goes) before the stop is reported: nothing of the workspace outlives stop().
  void core
    .placementOf(ws)
    .teardown(ws)
    .catch((error: unknown) =>
      core.logger.warn({ ws: ws.id, err: serializeError(error) }, 'the workspace cgroup could not be removed'),
    )
    .then(() => {
      if (ws.failure) finish(core, ws);
      else core.toWorkspace(ws, { type: 'GROUPS_EMPTY', at: core.clock.now(), reaped: result.reaped });
    });
}

/** The workspace actor reached `stopped` (or failed and was reaped): forget it. */
export function finish(core: CoreParts, ws: WorkspaceEntry): void {
  if (core.registry.get(ws.id) !== ws) return;
  const result = ws.stopResult ?? { reaped: 0, escaped: [] };
  if (ws.commands.size > 0) {
    const gone = new ShumaError('WORKSPACE_STOPPED', `workspace ${ws.id} (${ws.label}) stopped before the command started`);
    for (const command of ws.commands.values()) command.firstRun.reject(gone);
  }
  for (const pipeline of ws.pipelines.values()) settlePipeline(core, pipeline);
  core.registry.delete(ws.id);
  core.state?.markDirty();
  core.quota.forget(ws.id);
  core.placementOf(ws).forget(ws);
  for (const pipelineId of ws.pipelines.keys()) core.pipelines.delete(pipelineId);
  core.table.removeWorkspace(ws.id);
  // An actor that reached its end was let go by its worker as it told it; one that failed is still held.
  if (ws.failure) core.pool.send(ws.worker, { type: 'release', wsId: ws.id });
  core.pool.unplace(ws.worker);
  core.logger.info(
    {
      ws: ws.id,
      label: ws.label,
      reaped: result.reaped,
      escaped: result.escaped.length,
      reason: ws.failure ? 'fault' : (ws.snapshot.context.stopReason ?? null),
    },
    'workspace stopped',
  );
  // Its log files are let go before stop() returns: what it wrote last is on disk, no handle stays.
  // A close that failed (LogFile reports its own errors) must not keep stop() from returning.
  const released = core.logFiles?.releaseWorkspace(ws.id) ?? Promise.resolve();
  void released.catch(() => undefined).then(() => ws.stopped.resolve(result));
}

