// One command at a time: stop, restart and remove a supervised command while its workspace goes
// on. The command actor decides (a STOP is an event to it; it signals its own run and kills it
// once the grace is over); this file finds the command a name means, tells its actor, and waits
// for what the actor reports.
import { resolveProbe } from '../../protocol/supervision-spec.js';
import { ShumaError } from '../../protocol/errors.js';
import type { ActorSnapshot } from '../../protocol/actor-records.js';
import type { ChildEvent, StopReason, WorkspaceEvent } from '../../protocol/machine-events.js';
import { DEFAULT_GRACE_MS } from '../../protocol/specs.js';
import { validateGraceMs } from '../../protocol/validate-spec.js';
import { deferred } from '../processes/deferred.js';
import { groupMembers, listProcesses } from '../processes/proc.js';
import type { ProcessTable, RunEntry } from '../processes/process-table.js';
import type { CommandEntry, WorkspaceEntry } from '../registry/registry.js';

export interface CommandControlDeps {
  table: ProcessTable;
  now: () => number;
  toChild: (ws: WorkspaceEntry, key: string, event: ChildEvent) => void;
  toWorkspace: (ws: WorkspaceEntry, event: WorkspaceEvent) => void;
  /** Its placement hears of the stop as it is sent (it may act ahead of the actor: standing orders). */
  stopping: (ws: WorkspaceEntry, command: CommandEntry) => void;
  /** Lets the stopped command's record go (core/record-forget.ts). */
  forget: (ws: WorkspaceEntry, command: CommandEntry) => Promise<void>;
  /** The snapshot file should be written again (a command was forgotten). */
  changed: (ws: WorkspaceEntry) => void;
}

function stateName(snapshot: ActorSnapshot | null): string {
  if (!snapshot) return '';
  return typeof snapshot.value === 'string' ? snapshot.value : (Object.keys(snapshot.value)[0] ?? '');
}

/** Whether the command's actor still lives (it may run again); a finished one is only a record. */
export function isLive(command: CommandEntry): boolean {
  return command.snapshot === null || command.snapshot.status === 'active';
}

/** How a command is named to users: as `ps` shows it. */
function nameOf(ws: WorkspaceEntry, command: CommandEntry): string {
  return `${ws.label}/${command.label}`;
}

/**
 * The label a new command gets. A label given by the user is unique within its workspace: a
 * second one is refused (PM2 refuses a second `start --name` too), never silently duplicated,
 * because every later `logs`, `stop` or `restart` by that label would then be ambiguous. One
 * derived from the program's name is made unique instead (`sleep`, `sleep-2`…): nobody chose it.
 */
export function uniqueLabel(ws: WorkspaceEntry, label: string, chosen: boolean): string {
  const holder = ws.commands.withLabel(label);
  if (!holder) return label;
  if (chosen) {
    const state = stateName(holder.snapshot) || 'starting';
    throw new ShumaError(
      'INVALID_SPEC',
      `label ${JSON.stringify(label)} is already the label of command ${nameOf(ws, holder)} (${holder.key}, ${state}): labels are unique within a workspace; ` +
        `restart it (\`shuma restart ${nameOf(ws, holder)}\`), delete it first (\`shuma delete ${nameOf(ws, holder)}\`), or choose another label`,
      { field: 'label' },
    );
  }
  return ws.commands.freeSuffixed(label);
}

export class CommandControl {
  /** Restarts under way, by command key: a second request joins the first. */
  private readonly restarting = new Map<string, Promise<RunEntry>>();

  constructor(private readonly deps: CommandControlDeps) {}

  /** A command of `ws` by its key, the id of one of its runs, its label, or `ws/label`. */
  resolve(ws: WorkspaceEntry, name: string): CommandEntry {
    if (typeof name !== 'string' || name.length === 0) {
      throw new ShumaError('INVALID_ARGUMENT', `name a command by its id, its label or ws/label (got ${JSON.stringify(name)})`);
    }
    const byKey = ws.commands.get(name);
    if (byKey) return byKey;
    const run = this.deps.table.get(name);
    if (run && run.wsId === ws.id && run.pipelineId === undefined) {
      const command = ws.commands.get(run.key);
      if (command) return command;
    }
    const found = [...ws.commands.values()].filter(
      (c) => c.label === name || name === `${ws.label}/${c.label}` || name === `${ws.id}/${c.label}`,
    );
    if (found.length > 1) {
      throw new ShumaError(
        'AMBIGUOUS_NAME',
        `${JSON.stringify(name)} names ${found.length} commands of workspace ${ws.label}: ${found.map((c) => c.key).join(', ')}; use an id`,
      );
    }
    if (found[0]) return found[0];
    throw new ShumaError(
      'COMMAND_NOT_FOUND',
      `workspace ${ws.id} (${ws.label}) has no command ${JSON.stringify(name)}: commands() lists its commands (by id or label)`,
    );
  }

  /** Stops one command; its workspace and the other commands go on. Its record stays (restart() runs it again). */
  async stop(ws: WorkspaceEntry, name: string, graceMs: number | undefined, reason: StopReason = 'requested'): Promise<{ reaped: number }> {
    const grace = validateGraceMs(graceMs) ?? DEFAULT_GRACE_MS;
    const command = this.resolve(ws, name);
    const runsOf = () => this.deps.table.ofWorkspace(ws.id).filter((run) => run.key === command.key && run.pipelineId === undefined);
    const deadBefore = new Set(runsOf().filter((run) => !run.alive).map((run) => run.id));
    if (isLive(command)) {
      const final = this.whenFinal(ws, command);
      this.deps.stopping(ws, command);
      this.deps.toChild(ws, command.key, { type: 'STOP', at: this.deps.now(), graceMs: grace, reason });
      await final;
    }
    // Every run that was alive when the stop began, or started while it was under way.
    const reaped = runsOf().filter((run) => !deadBefore.has(run.id));
    await Promise.all(reaped.map((run) => run.exited.promise));
    killLeftovers(reaped);
    return { reaped: reaped.length };
  }

  /** A new run now: a live command is stopped first (default grace); an ended one runs again, its count going on. */
  restart(ws: WorkspaceEntry, name: string): Promise<RunEntry> {
    const command = this.resolve(ws, name);
    const pending = this.restarting.get(command.key);
    if (pending) return pending;
    const restart = this.restartNow(ws, command).finally(() => this.restarting.delete(command.key));
    this.restarting.set(command.key, restart);
    return restart;
  }

  /** A restart of the command is under way: its record must stay, whatever its last snapshot says. */
  isRestarting(key: string): boolean {
    return this.restarting.has(key);
  }

  private async restartNow(ws: WorkspaceEntry, command: CommandEntry): Promise<RunEntry> {
    checkRunning(ws);
    if (isLive(command)) await this.stop(ws, command.key, undefined, 'restart');
    checkRunning(ws);
    const restarts = Number(command.snapshot?.context.restarts ?? 0) + 1;
    const firstRun = deferred<RunEntry>();
    command.firstRun = firstRun;
    this.deps.toWorkspace(ws, {
      type: 'RUN',
      at: this.deps.now(),
      key: command.key,
      label: command.label,
      policy: command.policy,
      probe: resolveProbe(command.spec.ready),
      restarts,
      ...(command.spec.group !== undefined ? { group: command.spec.group } : {}),
    });
    return firstRun.promise;
  }

  /** Stopped, and forgotten: `ps` no longer lists it, its label is free again. */
  async remove(ws: WorkspaceEntry, name: string, graceMs?: number): Promise<{ reaped: number }> {
    const command = this.resolve(ws, name);
    const result = await this.stop(ws, command.key, graceMs);
    // A restart that began meanwhile made it live again: that run goes too.
    await this.restarting.get(command.key)?.catch(() => undefined);
    if (isLive(command)) await this.stop(ws, command.key, graceMs);
    await this.deps.forget(ws, command);
    this.deps.changed(ws);
    return result;
  }

  /** Resolves once the command's actor reached a final state (or its workspace is gone). */
  private whenFinal(ws: WorkspaceEntry, command: CommandEntry): Promise<void> {
    return new Promise((resolve) => {
      const observer = (snapshot: ActorSnapshot) => {
        if (snapshot.status === 'active') return;
        command.observers.delete(observer);
        resolve();
      };
      command.observers.add(observer);
      void ws.stopped.promise.then(() => resolve(), () => resolve());
    });
  }
}

function checkRunning(ws: WorkspaceEntry): void {
  if (ws.stopRequested || ws.hostStop || ws.failure || stateName(ws.snapshot) !== 'running') {
    throw new ShumaError(
      'WORKSPACE_STOPPED',
      `workspace ${ws.id} (${ws.label}) is ${ws.failure ? 'failed' : 'stopping'}: nothing new starts in it; create a new workspace`,
    );
  }
}

/** What a stopped run's group still holds (a child that ignored SIGTERM) is killed with it. */
function killLeftovers(runs: readonly RunEntry[]): void {
  if (runs.length === 0) return;
  const groups = new Set(runs.map((run) => run.pid));
  for (const member of groupMembers(groups, listProcesses())) {
    try {
      process.kill(member.pid, 'SIGKILL');
    } catch {
      // Gone since the scan: what we wanted.
    }
  }
}
