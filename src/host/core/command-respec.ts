// A command's spec replaced in place, for `apply`: the command keeps its key (so its id as `ps`
// shows it, its restart count, its log files and its why trail), and when what shapes its
// process changed it restarts under the new spec. A spawn reads the command's entry afresh each
// time, so swapping the entry and asking for a run is all a restart under a new spec takes.
import { ShumaError } from '../../protocol/errors.js';
import type { CommandSpec } from '../../protocol/specs.js';
import { resolveRestartPolicy, validateCommandSpec } from '../../protocol/validate-spec.js';
import type { RunEntry } from '../processes/process-table.js';
import type { CommandEntry, WorkspaceEntry } from '../registry/registry.js';
import { launchPlan, structuredCloneSpec } from '../spawn/launch-plan.js';
import { isLive, type CommandControl } from './command-control.js';
import type { CoreParts } from './core-parts.js';
import { ensureRunning } from './guards.js';

/**
 * Replaces the spec of the command `name` names. With `restart`, its live run is stopped (default
 * grace) and a run of the new spec starts; without, only the record changes (a field read at the
 * first start only, such as dependsOn). Resolves with the new run, or null without a restart.
 */
export async function respecCommand(
  core: CoreParts,
  control: CommandControl,
  ws: WorkspaceEntry,
  name: string,
  input: CommandSpec,
  restart: boolean,
): Promise<RunEntry | null> {
  const old = control.resolve(ws, name);
  const spec = validateCommandSpec(structuredCloneSpec(input));
  if (spec.label !== undefined && spec.label !== old.label) {
    throw new ShumaError('INVALID_SPEC', `label ${JSON.stringify(spec.label)} is not the label of command ${ws.label}/${old.label}: a replaced command keeps its label`, {
      field: 'label',
    });
  }
  ensureRunning(core, ws);
  const plan = await launchPlan(ws, spec);
  if (restart && isLive(old)) await control.stop(ws, old.key, undefined, 'restart');
  const current = ws.commands.get(old.key);
  if (!current) throw new ShumaError('COMMAND_NOT_FOUND', `command ${ws.label}/${old.label} was removed while its spec was being replaced`);
  const replaced: CommandEntry = {
    ...plan,
    key: current.key,
    wsId: ws.id,
    label: current.label,
    policy: resolveRestartPolicy(spec.restart),
    snapshot: current.snapshot,
    observers: current.observers,
    firstRun: current.firstRun,
  };
  ws.commands.set(current.key, replaced);
  core.state?.markDirty(ws);
  return restart ? control.restart(ws, current.key) : null;
}
