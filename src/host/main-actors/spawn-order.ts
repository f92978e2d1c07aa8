import type { CommandEntry, LaunchPlan, WorkspaceEntry } from '../registry/registry.js';
import { launchOrder } from '../spawn/launcher.js';
import type { SpawnOrder } from '../spawn/spawner.js';
import type { HostActorDeps } from './host-actor-deps.js';

type OrderDeps = Pick<HostActorDeps, 'orderFor' | 'prlimit' | 'setpriv' | 'dieWithRuntime' | 'spawner'>;

/**
 * A command's run leads a session (a scheduling autogroup) of its own: its program's first
 * milliseconds do not delay the runtime's threads that tell its start (bench (b)). A
 * pipeline's nodes stay in the runtime's session (spawner.ts, `ownSession`).
 */
export function commandSpawnOrder(deps: OrderDeps, ws: WorkspaceEntry, command: CommandEntry): SpawnOrder {
  if (deps.orderFor) return { ...deps.orderFor(ws, command), ownSession: true };
  return spawnOrderFor(deps, ws, command, true);
}

/** The spawn order of a command or a pipeline's node: its limits and its cgroup applied before the program runs. */
export function spawnOrderFor(deps: OrderDeps, ws: WorkspaceEntry, plan: LaunchPlan, ownSession?: true): SpawnOrder {
  if (deps.orderFor) return deps.orderFor(ws, plan);
  const order = { file: plan.file, argv0: plan.spec.exec, args: plan.spec.argv ?? [], env: plan.env, cwd: plan.cwd, ownSession };
  // With a cgroup, memory is the kernel's to bound (an OOM kill of the workspace's processes),
  // not RLIMIT_AS's (an address-space cap that breaks programs reserving large mappings).
  const limits = ws.cgroup && ws.spec.limits ? { ...ws.spec.limits, memoryBytes: undefined } : ws.spec.limits;
  const wrapping = {
    prlimit: deps.prlimit(),
    setpriv: deps.setpriv(),
    dieWithRuntime: deps.dieWithRuntime(),
    limits,
    cgroupProcsFiles: ws.cgroup?.procsFiles ?? [],
  };
  return launchOrder(order, wrapping, deps.spawner.appliesLimits);
}
