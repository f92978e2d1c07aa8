// The daemon's side of `shuma stop <cmd>`, `shuma restart <ws|cmd>` and `shuma delete <cmd>`:
// names resolved as `ps` shows them, then the public API's one-command operations.
import type { Runtime } from '../host/runtime.js';
import type { RuntimeView, WorkspaceView } from '../host/runtime-view.js';
import type { DeleteResult, FlushResult, RestartResult, RestartedCommand, StopResultData } from '../protocol/control-results.js';
import { ShumaError } from '../protocol/errors.js';
import { commandsOfWorkspace, findCommand, findWorkspace, type CommandRef } from './names.js';

/** A supervised command, not a pipeline's node: those stop and restart with their pipeline. */
function commandOnly(ref: CommandRef, what: string): CommandRef {
  if (ref.pipeline) {
    throw new ShumaError(
      'INVALID_ARGUMENT',
      `${ref.ws.label}/${ref.pipeline.label}/${ref.label} is a node of pipeline ${ref.pipeline.label}: a node cannot ${what} alone; name the pipeline (${ref.ws.label}/${ref.pipeline.label})`,
    );
  }
  return ref;
}

export async function stopCommandNamed(rt: Runtime, ref: CommandRef, graceMs: number | undefined): Promise<StopResultData> {
  commandOnly(ref, 'stop');
  const result = await rt.workspace(ref.ws.id)!.stopCommand(ref.key, graceMs === undefined ? {} : { graceMs });
  return { kind: 'command', id: ref.key, label: `${ref.ws.label}/${ref.label}`, reaped: result.reaped, escaped: [] };
}

async function restartOne(rt: Runtime, ws: WorkspaceView, key: string, label: string): Promise<RestartedCommand> {
  const command = await rt.workspace(ws.id)!.restartCommand(key);
  return { name: `${ws.label}/${label}`, commandKey: key, id: command.id, pid: command.pid, restarts: Number(command.getSnapshot()?.context.restarts ?? 0) };
}

/**
 * `restart <ws>` restarts every command of the workspace (at once); `restart <cmd>` one. As for
 * `stop`, a workspace's name wins over a command label (`ws/label` names the command).
 */
export async function restartNamed(core: RuntimeView, rt: Runtime, target: string): Promise<RestartResult> {
  core.ensureOpen();
  const ws = findWorkspace(core, target);
  if (ws) {
    const refs = commandsOfWorkspace(core, ws);
    const restarted = await Promise.all(refs.map((ref) => restartOne(rt, ws, ref.key, ref.label)));
    return { kind: 'workspace', id: ws.id, label: ws.label, restarted };
  }
  const command = findCommand(core, target);
  if (!command) {
    throw new ShumaError('COMMAND_NOT_FOUND', `no workspace or command has the id or label ${JSON.stringify(target)}: \`shuma ps\` lists them`);
  }
  commandOnly(command, 'restart');
  const one = await restartOne(rt, command.ws, command.key, command.label);
  return { kind: 'command', id: command.key, label: one.name, restarted: [one] };
}

export async function deleteNamed(core: RuntimeView, rt: Runtime, target: string, graceMs: number | undefined): Promise<DeleteResult> {
  core.ensureOpen();
  const command = findCommand(core, target);
  if (!command) {
    const ws = findWorkspace(core, target);
    throw new ShumaError(
      'COMMAND_NOT_FOUND',
      ws
        ? `${JSON.stringify(target)} is a workspace: \`shuma stop ${target}\` ends a workspace; delete takes a command (ws/label)`
        : `no command has the id or label ${JSON.stringify(target)}: \`shuma ps\` lists them`,
    );
  }
  commandOnly(command, 'be deleted');
  const entry = command.ws.commands.get(command.key);
  const runningBefore = entry !== undefined && (entry.snapshot === null || entry.snapshot.status === 'active');
  const alive = core.table.ofWorkspace(command.ws.id).filter((run) => run.key === command.key && run.alive).length;
  await rt.workspace(command.ws.id)!.removeCommand(command.key, graceMs === undefined ? {} : { graceMs });
  return { name: `${command.ws.label}/${command.label}`, commandKey: command.key, reaped: runningBefore ? alive : 0 };
}

/** `flush` empties every log file; `flush <ws>` a workspace's; `flush <cmd>` one command's. */
export async function flushNamed(core: RuntimeView, rt: Runtime, target: string | undefined): Promise<FlushResult> {
  core.ensureOpen();
  if (target === undefined) {
    await rt.flushLogs();
    return { flushed: 'all', name: null };
  }
  const ws = findWorkspace(core, target);
  if (ws) {
    await rt.workspace(ws.id)!.flushLogs();
    return { flushed: 'workspace', name: ws.label };
  }
  const command = findCommand(core, target);
  if (!command) throw new ShumaError('COMMAND_NOT_FOUND', `no workspace or command has the id or label ${JSON.stringify(target)}: \`shuma ps\` lists them`);
  commandOnly(command, 'be flushed');
  await rt.workspace(command.ws.id)!.flushLogs(command.key);
  return { flushed: 'command', name: `${command.ws.label}/${command.label}` };
}
