import { ShumaError } from '../../protocol/errors.js';
import type { PlacementInfo } from '../../protocol/placement-spec.js';
import type { ToWorker } from '../../protocol/worker-messages.js';
import type { WorkspaceSpec } from '../../protocol/specs.js';
import type { Placement, PreparedWorkspace } from '../placement/placement.js';
import type { CgroupHandle, WorkspaceEntry } from '../registry/registry.js';
import type { CoreParts } from './core-parts.js';
import { ensureOpen } from './guards.js';
import { notYetPlaced } from './not-yet-placed.js';

// The create of a workspace whose placement waits on something outside (a Slurm allocation:
// salloc waits on the controller for ~6 ms at best): its actor is hosted on its worker while the
// placement is prepared, so that the actor's round trip (two thread hand-offs, 1-6 ms under
// load) overlaps that wait instead of following it.
//
// Until its placement answered, the workspace is `placing` (Registry.addPlacing): its actor's
// messages and a stop find it by id; listWorkspaces(), the snapshot file, the quota actor, ps,
// the inspector and health() do not see it (a crash then saves nothing of it). Its stop (its TTL,
// a shutdown, its actor's failure) reaches the placement's teardown(), which withdraws what was
// being prepared; a placement that refuses lets go of the actor. Either way the create rejects
// only once nothing of the workspace is left.

/** How workspace-lifecycle.ts makes a workspace (passed in: that file calls this one). */
export interface WorkspaceMaking {
  entry(core: CoreParts, spec: WorkspaceSpec, id: string, createdAt: number, cwd: string, prepared: PreparedWorkspace): WorkspaceEntry;
  message(ws: WorkspaceEntry): Extract<ToWorker, { type: 'createWorkspace' }>;
  announced(core: CoreParts, ws: WorkspaceEntry, restored: boolean): WorkspaceEntry;
}

export async function createWhilePlacing(
  core: CoreParts,
  spec: WorkspaceSpec,
  id: string,
  placement: Placement,
  making: WorkspaceMaking,
): Promise<WorkspaceEntry> {
  ensureOpen(core);
  if (core.registry.get(id)) {
    throw new ShumaError('INVALID_ARGUMENT', `id ${id} is already the id of a live workspace: ids are unique`);
  }
  // The cwd is checked once the placement's request is under way (below), so that nothing but
  // validation without I/O comes before it; nothing reads a placing workspace's cwd.
  const ws = making.entry(core, spec, id, core.clock.now(), '', { cgroup: null, warnings: [], info: notYetPlaced(placement) });
  core.registry.addPlacing(ws);
  // Hosted once the placement's request is under way (salloc's spawn asked of the addon's
  // thread), not before: woken first, the worker delayed that request by 2.5-5 ms a create at
  // load ~16 (medians of 40, in turn, three runs). `asked` comes within prepare()'s synchronous
  // part (its first call: within its microtasks), before any stop can reach the workspace (a
  // placement that never calls it is hosted once it answered).
  let hosted = false;
  const host = () => {
    if (hosted) return;
    hosted = true;
    core.pool.send(ws.worker, making.message(ws));
  };
  let prepared: PreparedWorkspace;
  const preparing = placement.prepare(spec, id, undefined, host);
  // Awaited below, or after the cwd check's failure: never left unhandled meanwhile.
  preparing.catch(() => undefined);
  try {
    (ws as { cwd: string }).cwd = await checkCwdWhilePlacing(core, spec, ws, placement, preparing);
    prepared = await preparing;
    host();
  } catch (error) {
    host();
    throw await notPlaced(core, ws, error);
  }
  // Set once, before anyone outside the core can see the workspace.
  const placed = ws as { placement: PlacementInfo; cgroup: CgroupHandle | null };
  placed.placement = prepared.info ?? { kind: 'local' };
  placed.cgroup = prepared.cgroup;
  ws.warnings.push(...prepared.warnings);
  core.registry.placed(ws);
  if (core.closed) {
    // The shutdown stops this workspace with the others (it found it placing or listed): the
    // create rejects once it is gone.
    await ws.stopped.promise;
    throw stoppedError(core, ws);
  }
  const stoppedFirst = ws.stopped.promise.then(() => {
    throw stoppedError(core, ws);
  });
  await Promise.race([ws.started.promise, stoppedFirst]);
  return making.announced(core, ws, false);
}

/**
 * The workspace's cwd, checked while its placement is prepared. Missing: what the placement
 * was asked is withdrawn (salloc ended, its job cancelled) and let go before INVALID_SPEC, so
 * that nothing of the workspace is left.
 */
async function checkCwdWhilePlacing(
  core: CoreParts,
  spec: WorkspaceSpec,
  ws: WorkspaceEntry,
  placement: Placement,
  preparing: Promise<PreparedWorkspace>,
): Promise<string> {
  try {
    return await core.cwdChecks.check(spec.cwd ?? process.cwd());
  } catch (error) {
    await placement.teardown(ws);
    const prepared = await preparing.catch(() => null);
    await prepared?.release?.();
    throw error;
  }
}

/**
 * The placement did not answer with a workspace. Refused on its own (Slurm said no): the actor
 * is let go here. Stopped while it was prepared (TTL, shutdown, a failed actor): the stop ends
 * it. Either way the create rejects once nothing of it is left.
 */
async function notPlaced(core: CoreParts, ws: WorkspaceEntry, error: unknown): Promise<unknown> {
  if (core.registry.get(ws.id) === ws && !ws.stopRequested && !ws.hostStop && !ws.failure) {
    core.registry.delete(ws.id);
    core.pool.send(ws.worker, { type: 'release', wsId: ws.id });
    core.pool.unplace(ws.worker);
    return error;
  }
  await ws.stopped.promise;
  return error instanceof ShumaError && error.code === 'WORKSPACE_STOPPED' ? stoppedError(core, ws) : error;
}

function stoppedError(core: CoreParts, ws: WorkspaceEntry): ShumaError {
  if (ws.failure) return new ShumaError('ACTOR_FAILED', `workspace ${ws.id} (${ws.label}) failed before it ran: ${ws.failure.message}`);
  if (core.closed) {
    return new ShumaError('RUNTIME_CLOSED', `the runtime was shut down while workspace ${ws.label} was being placed; nothing of it is left (no job queued)`);
  }
  const reason = ws.snapshot.context.stopReason;
  return new ShumaError(
    'WORKSPACE_STOPPED',
    `workspace ${ws.id} (${ws.label}) was stopped${typeof reason === 'string' ? ` (${reason})` : ''} before its placement was ready; nothing of it is left (no job queued)${reason === 'ttl' ? ': give it a ttlMs longer than the allocation takes' : ''}`,
  );
}
