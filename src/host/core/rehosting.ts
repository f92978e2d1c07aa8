import { serializeError } from '../../protocol/errors.js';
import type { ActorSnapshot } from '../../protocol/actor-records.js';
import { stateName } from '../../protocol/state-value.js';
import { exitEvent } from '../main-actors/reaper.js';
import type { WorkspaceEntry } from '../registry/registry.js';
import type { CoreParts } from './core-parts.js';
import { serveRequest } from './worker-inbox.js';
import { onActorError } from './workspace-lifecycle.js';
import { ordersToRetell } from './orders-in-flight.js';
import type { ChildEvent, WorkspaceEvent } from '../../protocol/machine-events.js';

/**
 * A worker thread died (a bug, out of memory, terminated from outside): its actors come back
 * on a new thread from their last persisted snapshots. The processes never noticed: they are
 * the host's. What the dead thread may have missed (exits) is told again; the machines ignore
 * what they already knew.
 */
export function onWorkerLost(core: CoreParts, index: number, error: unknown): void {
  core.workerRestarts++;
  core.logger.error({ worker: index, restarts: core.workerRestarts, err: serializeError(error) }, 'an actor worker thread died; re-hosting its actors');
  if (index < 0 || core.closed) return;
  core.pool.restartMember(index);
  // The new thread starts knowing nothing: what the old one was told about inspection, it is told again.
  if (core.inspectors.size > 0) core.pool.send(index, { type: 'inspect', enabled: true });
  for (const ws of [...core.registry.all(), ...core.registry.allPlacing()]) {
    if (ws.worker !== index || ws.failure) continue;
    if (ws.persisted === null) {
      onActorError(core, ws, { name: 'Error', message: 'its worker thread died before its first snapshot' });
      continue;
    }
    core.pool.send(index, {
      type: 'restoreWorkspace',
      wsId: ws.id,
      label: ws.label,
      ttlMs: ws.spec.ttlMs ?? null,
      at: core.clock.now(),
      snapshot: ws.persisted,
      lostKeys: [],
    });
    // The user's orders the dead thread may not have handled come before the facts since: a
    // command stopped and then seen exiting must end stopped, not relaunched.
    for (const { child, event } of ordersToRetell(ws)) {
      if (child === null) core.toWorkspace(ws, event as WorkspaceEvent);
      else core.toChild(ws, child, event as ChildEvent);
    }
    retell(core, ws);
    // A stop's end (nothing of the scope left) told to the dead thread is found again.
    if (ws.hostStop) core.placementOf(ws).checkEmpty(ws);
    for (const pipeline of ws.pipelines.values()) if (pipeline.hostStop) core.placementOf(ws).checkEmpty(pipeline);
  }
}

/**
 * What a re-hosted workspace's children may have missed while their thread was dying: the
 * spawn they asked for (done, under way, or never received), a readiness said once, and the
 * exits since. Told again from the process table; a machine ignores what it already knew (runs
 * are matched by id); a spawn under way is not asked twice (main-actors/host-actor.ts).
 */
function retell(core: CoreParts, ws: WorkspaceEntry): void {
  const at = core.clock.now();
  const children = (ws.persisted as { children?: Record<string, { src?: string; snapshot?: { value?: unknown; context?: Record<string, unknown> } }> } | null)?.children ?? {};
  for (const [key, child] of Object.entries(children)) {
    const state = stateName((child.snapshot?.value ?? '') as ActorSnapshot['value']);
    const context = child.snapshot?.context ?? {};
    const runs = core.table.ofWorkspace(ws.id).filter((run) => run.key === key);
    if (child.src === 'command') {
      const restarts = Number(context.restarts ?? 0);
      const latest = runs.filter((run) => run.restarts === restarts).at(-1);
      if (latest) {
        core.toChild(ws, key, { type: 'SPAWNED', at, runId: latest.id, pid: latest.pid });
        // A line or notify probe says "ready" once: the actor may have missed it (one that heard it ignores it).
        if (latest.saidReady !== undefined) core.toChild(ws, key, { type: 'PROBE_RESULT', at, runId: latest.id, ok: true, detail: latest.saidReady });
        if (latest.exit) core.toChild(ws, key, exitEvent(latest, latest.exit, at));
      } else if (state === 'starting' || state === 'restarting') {
        serveRequest(core, { type: 'spawn', wsId: ws.id, key, restarts });
      }
    } else if (child.src === 'pipeline') {
      const pipeline = ws.pipelines.get(key);
      const attempt = Number(context.attempt ?? 0);
      const current = runs.filter((run) => run.restarts === attempt);
      if (pipeline && current.length === pipeline.nodes.length) {
        core.toChild(ws, key, { type: 'PIPELINE_SPAWNED', at, attempt, runs: current.map((r) => ({ label: r.label, runId: r.id, pid: r.pid })) });
        for (const run of current) {
          if (run.exit) core.toChild(ws, key, exitEvent(run, run.exit, at));
        }
      } else if (state === 'created' || state === 'restarting') {
        serveRequest(core, { type: 'spawnPipeline', wsId: ws.id, pipelineId: key, attempt });
      }
    }
  }
}
