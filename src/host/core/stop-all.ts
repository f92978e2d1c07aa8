import type { StopReason, WorkspaceEvent } from '../../protocol/machine-events.js';
import type { WorkspaceEntry } from '../registry/registry.js';
import type { CoreParts } from './core-parts.js';
import { holdsNothing, requestStop } from './workspace-lifecycle.js';

// A shutdown's stops, told all at once. Those with nothing to reap hear one STOP each in a few
// messages per actor thread (the same event for all of them), the others as a stop of one
// alone; what each actor decides and says back is what it would for a stop of it alone. The
// shutdown then waits once for the registry to empty, not on a promise per workspace.

/**
 * Workspaces per message: the thread answers in parts (protocol/channel.ts ANSWER_PART) between
 * messages, so the main thread takes the first stopped ones while the thread handles the rest.
 */
const STOPS_PER_MESSAGE = 64;

export async function stopAll(core: CoreParts, workspaces: Iterable<WorkspaceEntry>, graceMs: number, reason: StopReason): Promise<void> {
  const stop: WorkspaceEvent = { type: 'STOP', at: core.clock.now(), graceMs, reason, groupsEmpty: true };
  const idleByThread = new Map<number, string[]>();
  for (const ws of workspaces) {
    if (ws.failure || !holdsNothing(core, ws)) {
      requestStop(core, ws, graceMs, reason);
      continue;
    }
    ws.stopRequested = true;
    // As toWorkspace counts each event told to an actor: the snapshot's record moved.
    ws.changes++;
    let ids = idleByThread.get(ws.worker);
    if (!ids) idleByThread.set(ws.worker, (ids = []));
    ids.push(ws.id);
  }
  for (const [thread, ids] of idleByThread) {
    for (let i = 0; i < ids.length; i += STOPS_PER_MESSAGE) {
      core.pool.send(thread, { type: 'workspacesEvent', wsIds: ids.slice(i, i + STOPS_PER_MESSAGE), event: stop });
    }
  }
  await core.registry.emptied();
}
