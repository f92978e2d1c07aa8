import type { Logger } from 'pino';
import type { ChildEvent } from '../../protocol/machine-events.js';
import type { TapPlane } from '../flows/flow-hub.js';
import type { ProcessTable } from '../processes/process-table.js';
import type { LogFiles } from '../processes/log-files.js';
import type { LaunchPlan, Registry, WorkspaceEntry } from '../registry/registry.js';
import type { Spawner, SpawnOrder } from '../spawn/spawner.js';
import type { ProbeRunner } from '../probes/probe-runner.js';
import type { Reaper } from './reaper.js';

/** What the host actor (and the parts it is made of) works with. */
export interface HostActorDeps {
  registry: Registry;
  table: ProcessTable;
  spawner: Spawner;
  reaper: Reaper;
  logger: Logger;
  now: () => number;
  newId: () => string;
  logBufferBytes: number;
  /** The files every captured stream is also written to (with a stateDir), or null. */
  logFiles: () => LogFiles | null;
  toChild: (ws: WorkspaceEntry, key: string, event: ChildEvent) => void;
  /** util-linux's prlimit, null when missing (the workspace's warnings say so). */
  prlimit: () => string | null;
  /** util-linux's setpriv, null when missing (the runtime's warnings say so). */
  setpriv: () => string | null;
  /** Whether children must die with the runtime: true unless a stateDir with orphans 'adopt' keeps them. */
  dieWithRuntime: () => boolean;
  /** A tapped pipeline's nodes are wired to the runtime through kernel pipes, and pumped by it. */
  taps: TapPlane;
  /** Readiness probes armed at a spawn: a line on stdout, NOTIFY_SOCKET. */
  probes: ProbeRunner;
  /** How a command becomes a spawn order on another placement (a Slurm step); default: this machine's. */
  orderFor?: (ws: WorkspaceEntry, plan: LaunchPlan) => SpawnOrder;
}

