import { availableParallelism } from 'node:os';
import { QuotaActor } from '../main-actors/quota-actor.js';
import { NotifySockets } from '../probes/notify-socket.js';
import { ProbeRunner } from '../probes/probe-runner.js';
import { createPlacements, type Placements } from '../placement/placements.js';
import type { SlurmOptions } from '../placement/slurm/workspace-job.js';
import type { Spawner } from '../spawn/spawner.js';
import { WorkerPool } from '../workers/worker-pool.js';
import { CommandControl } from './command-control.js';
import type { CoreParts } from './core-parts.js';
import { onWorkerLost } from './rehosting.js';
import { DEFAULT_STATS_INTERVAL_MS, type RuntimeOptions } from './runtime-options.js';
import { receiveGuarded } from './worker-inbox.js';
import { onScopeEmpty } from './workspace-lifecycle.js';
import { forgetCommandRecord } from './record-forget.js';

// How the core's parts reach each other: each part is told only the few core operations it
// needs (as callbacks), so no part holds the core itself. The core calls these in its constructor,
// in this order (the placements need the probes; nothing else needs an order).

/** The core as its parts see it while it is being composed. */
export interface WiredCore extends CoreParts {
  /** Whether children die with the runtime (read at each spawn: a stateDir may change it). */
  readonly childrenDieWithRuntime: boolean;
}

export function wireProbes(core: WiredCore, now: () => number): ProbeRunner {
  return new ProbeRunner({
    registry: core.registry,
    runs: core.table,
    now,
    logger: core.logger,
    toChild: (ws, key, event) => core.toChild(ws, key, event),
    notify: new NotifySockets(),
  });
}

export function wirePlacements(core: WiredCore, spawner: Spawner, now: () => number, slurm: SlurmOptions | undefined): Placements {
  return createPlacements({
    registry: core.registry,
    table: core.table,
    spawner,
    logger: core.logger,
    now,
    newId: () => core.newId(),
    logBufferBytes: core.logBufferBytes,
    logFiles: () => core.logFiles,
    runtimeId: core.runtimeId,
    taps: core.flows,
    probes: core.probes,
    dieWithRuntime: () => core.childrenDieWithRuntime,
    warn: (message) => core.warn(message),
    events: {
      toChild: (ws, key, event) => core.toChild(ws, key, event),
      scopeEmpty: (scope, result) => onScopeEmpty(core, scope, result),
    },
  }, slurm);
}

export function wireQuota(core: WiredCore, now: () => number, options: RuntimeOptions): QuotaActor {
  return new QuotaActor({
    registry: core.registry,
    table: core.table,
    logger: core.logger,
    now,
    intervalMs: options.statsIntervalMs ?? DEFAULT_STATS_INTERVAL_MS,
    onBreach: (ws, breach) => core.toWorkspace(ws, breach),
    usage: (ws) => core.placementOf(ws).usage(ws),
    warn: (message) => core.warn(message),
  });
}

export function wirePool(core: WiredCore, options: RuntimeOptions): WorkerPool {
  return new WorkerPool({
    size: options.workers ?? Math.min(2, availableParallelism()),
    manualClockStart: core.clock.manual ? core.clock.now() : null,
    onMessage: (_index, message) => receiveGuarded(core, message),
    onWorkerLost: (index, error) => onWorkerLost(core, index, error),
    logger: core.logger,
  });
}

export function wireCommandControl(core: WiredCore, now: () => number): CommandControl {
  return new CommandControl({
    table: core.table,
    now,
    toChild: (ws, key, event) => core.toChild(ws, key, event),
    toWorkspace: (ws, event) => core.toWorkspace(ws, event),
    stopping: (ws, command) => core.placementOf(ws).commandStopping?.(ws, command),
    forget: (ws, command) => forgetCommandRecord(core, ws, command, 'kept'),
    changed: (ws) => core.state?.markDirty(ws),
  });
}
