// One command described: its spec and what it was resolved to (program, cwd, environment), its
// workspace's limits, its policy and restarts, its state and readiness, its last runs and where
// its log files are. Read from the registry and the process table; nothing is changed.
import { DESCRIBE_RUNS, type CommandDescription } from '../../protocol/command-description.js';
import { stateName } from '../../protocol/state-value.js';
import type { WorkspaceEntry } from '../registry/registry.js';
import type { CommandControl } from './command-control.js';
import type { CoreParts } from './core-parts.js';

export function describeCommand(core: CoreParts, control: CommandControl, ws: WorkspaceEntry, name: string): CommandDescription {
  const command = control.resolve(ws, name);
  const runs = core.table.ofWorkspace(ws.id).filter((run) => run.key === command.key && run.pipelineId === undefined);
  const latest = runs.at(-1);
  const snapshot = command.snapshot;
  const state = snapshot ? stateName(snapshot.value) : latest?.alive ? 'running' : 'starting';
  const ended = snapshot !== null && snapshot.status !== 'active';
  const backoff = state === 'backoff' ? Number(snapshot?.context.backoffDeadline ?? 0) || null : null;
  return {
    id: latest?.id ?? command.key,
    commandKey: command.key,
    label: command.label,
    workspace: { id: ws.id, label: ws.label },
    spec: structuredClone(command.spec),
    file: command.file,
    cwd: command.cwd,
    env: { ...command.env },
    limits: ws.spec.limits ? { ...ws.spec.limits } : null,
    restartPolicy: { ...command.policy },
    restarts: Number(snapshot?.context.restarts ?? latest?.restarts ?? 0),
    state,
    ready: ended ? null : state === 'running',
    // A dead process's pid names nothing (and may soon name a stranger): none is given.
    pid: latest?.alive ? latest.pid : null,
    restartAt: backoff,
    runs: runs.slice(-DESCRIBE_RUNS).map((run) => ({
      id: run.id,
      pid: run.pid,
      startedAt: run.startedAt,
      alive: run.alive,
      exit: run.exit ? { code: run.exit.code, signal: run.exit.signal, status: run.exit.status } : null,
      reason: run.reason,
    })),
    logFiles: core.logFiles ? core.logFiles.pathsOf({ wsId: ws.id, key: command.key, label: command.label }) : null,
  };
}
