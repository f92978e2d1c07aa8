import type { Runtime } from '../src/index.js';
import { coreOf } from '../src/host/runtime.js';
import type { RelaunchOrder } from '../src/protocol/host-requests.js';
import type { ChildEvent } from '../src/protocol/machine-events.js';
import type { CommandEntry, WorkspaceEntry } from '../src/host/registry/registry.js';
import { waitFor } from './helpers.js';
import { wrapSpawner } from './wrapped-spawner.js';

// The host actor's doors, watched, for the tests of runs started ahead of an actor
// (standing-orders.ts): its requests past the first are held on the main thread (the worker "does
// not answer") to see the host run on without it.

/** How far the host runs ahead of an actor that does not answer (standing-orders.ts MAX_AHEAD). */
export const MAX_AHEAD = 8;

interface HostActorLike {
  spawnCommand(ws: WorkspaceEntry, command: CommandEntry, restarts: number, relaunch?: RelaunchOrder): void;
  tellExit(ws: WorkspaceEntry, key: string, event: ChildEvent): void;
}

/** The host actor's doors, watched: spawns submitted, exits coming in, and the actor's requests past the first held until released. */
export function watchHost(rt: Runtime) {
  const host = (coreOf(rt).placements.local as unknown as { host: HostActorLike }).host;
  const listeners = new Set<() => void>();
  const changed = () => {
    for (const listener of listeners) listener();
  };
  const watch = {
    spawns: 0,
    /** The processes spawned, as each spawn completes. */
    pids: [] as number[],
    exits: [] as Array<{ runId: string; spawnsAfter: number }>,
    held: [] as Array<() => void>,
    holding: true,
    subscribe(listener: () => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    release() {
      watch.holding = false;
      for (const request of watch.held.splice(0)) request();
    },
  };
  wrapSpawner(rt, (order, real) => {
    watch.spawns++;
    queueMicrotask(changed);
    const spawned = real.spawn(order);
    spawned.then((child) => {
      watch.pids.push(child.pid);
      changed();
    }, changed);
    return spawned;
  });
  const spawnCommand = host.spawnCommand.bind(host);
  host.spawnCommand = (ws, command, restarts, relaunch) => {
    if (watch.holding && restarts > 0) watch.held.push(() => spawnCommand(ws, command, restarts, relaunch));
    else spawnCommand(ws, command, restarts, relaunch);
  };
  const tellExit = host.tellExit.bind(host);
  host.tellExit = (ws, key, event) => {
    tellExit(ws, key, event);
    // A relaunch submits its spawn as the exit is handled: counted here, it is counted as the exit's.
    if (event.type === 'EXITED') watch.exits.push({ runId: event.runId, spawnsAfter: watch.spawns });
    changed();
  };
  /** Resolves once `predicate` holds (now, or after a change the host saw). */
  function until(predicate: () => boolean, what: string): Promise<void> {
    if (predicate()) return Promise.resolve();
    return waitFor<void>((listener) => watch.subscribe(listener), predicate, what);
  }
  return Object.assign(watch, { until });
}

/** What the actor of command `label` heard of its runs, in order: `s` SPAWNED and `x` EXITED, with the run's restart count. */
export function tapToChild(rt: Runtime, label: string): string[] {
  const core = coreOf(rt);
  const heard: string[] = [];
  const send = core.toChild.bind(core);
  core.toChild = (ws, key, event) => {
    const run = 'runId' in event ? core.table.get(event.runId) : undefined;
    if (run?.label === label && (event.type === 'SPAWNED' || event.type === 'EXITED')) heard.push(`${event.type === 'SPAWNED' ? 's' : 'x'}${run.restarts}`);
    send(ws, key, event);
  };
  return heard;
}
