import { ShumaError } from '../../protocol/errors.js';
import type { ActorSnapshot } from '../../protocol/actor-records.js';
import type { CommandEntry, WorkspaceEntry } from '../registry/registry.js';

/**
 * run() of a command that waits for its dependencies resolves at its first spawn; when it can
 * never start (a dependency failed, its group stopped it first), run() rejects and says why.
 */
export function settleFirstRun(ws: WorkspaceEntry, command: CommandEntry, snapshot: ActorSnapshot): void {
  if (command.firstRun.settled) return;
  const context = snapshot.context as { dependencyDetail?: string | null; stopReason?: string | null; stopDetail?: string | null };
  // A workspace's own stop is told by its end (WORKSPACE_STOPPED); a group that gave up, here.
  if (snapshot.value !== 'unmet' && !(snapshot.value === 'stopped' && context.stopReason === 'supervision')) return;
  const why =
    snapshot.value === 'unmet'
      ? `a dependency can never hold: ${context.dependencyDetail ?? 'it ended'}`
      : `its group gave up (${context.stopDetail ?? 'supervision'}) while it waited for its dependencies`;
  command.firstRun.reject(new ShumaError('DEPENDENCY_FAILED', `command ${command.label} of workspace ${ws.id} (${ws.label}) never started: ${why}`));
}
