import { serializeError } from '../../protocol/errors.js';
import type { Signal } from '../../protocol/host-requests.js';
import { descendantsOf, listProcesses, type ProcStat } from '../processes/proc.js';
import { forgetReusedGroups } from '../processes/reused-groups.js';
import { signalGroup, signalIfSame, signalPid } from '../processes/signals.js';
import type { StopScope, WorkspaceEntry } from '../registry/registry.js';
import type { HostActorDeps } from './host-actor-deps.js';

// How the host signals a workspace or a pipeline that stops: every process group, the
// descendants that left them (found once, at the first signal), and the workspace's cgroup.

export function signalScope(deps: HostActorDeps, scope: StopScope, signal: Signal, only?: ReadonlySet<number>): void {
  const { table } = deps;
  const alive = table.aliveIn(scope);
  forgetReusedGroups(scope.groups, alive);
  if (!scope.hostStop) {
    let descendants: ProcStat[] = [];
    // A /proc scan costs milliseconds: only when there is someone to look for.
    if (alive.length > 0 || scope.groups.size > 0) {
      const processes = processesForStop(deps, scope);
      // Search under our unreaped runs and the live members of our groups — never under a
      // group id alone: its leader may be gone and its number reused by a stranger, whose
      // children are not ours. (A number cannot be reused while a group of that id lives.)
      const roots = new Set(alive.map((run) => run.pid));
      for (const p of processes) if (scope.groups.has(p.pgrp)) roots.add(p.pid);
      descendants = descendantsOf(roots, processes).filter((p) => !scope.groups.has(p.pgrp));
    }
    scope.hostStop = { lastSignal: signal, aliveAtStop: alive.length, descendants };
  }
  scope.hostStop.lastSignal = signal;
  for (const pgid of [...scope.groups]) {
    if (only && !only.has(pgid)) continue;
    if (!signalGroup(pgid, signal, deps.logger)) scope.groups.delete(pgid);
  }
  // A stop in waves reaches the escaped and the cgroup with its last wave.
  if (only) {
    deps.reaper.check(scope);
    return;
  }
  for (const escaped of scope.hostStop.descendants) signalIfSame(escaped, signal, deps.logger);
  // A workspace's cgroup holds even what left every group and parent link (a double-forked daemon).
  if (scope.kind === 'workspace') {
    const cgroup = (scope as WorkspaceEntry).cgroup;
    for (const pid of cgroup?.pids() ?? []) signalPid(pid, signal);
  }
  deps.reaper.check(scope);
}

/**
 * Every process, to find a stopping scope's escaped descendants. Unreadable now (EMFILE…):
 * the stop goes on with its groups and cgroup, which need no scan; it is said, not thrown.
 */
function processesForStop(deps: HostActorDeps, scope: StopScope): ProcStat[] {
  try {
    return listProcesses();
  } catch (error) {
    deps.logger.warn({ scope: scope.id, err: serializeError(error) }, 'could not read /proc to find escaped descendants; stopping the process groups only');
    return [];
  }
}
