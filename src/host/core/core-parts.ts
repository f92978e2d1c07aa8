import type { Logger } from 'pino';
import type { InspectionRecord } from '../../protocol/actor-records.js';
import type { ChildEvent, WorkspaceEvent } from '../../protocol/machine-events.js';
import type { PipelineSpec } from '../../protocol/pipeline-spec.js';
import type { FlowHub } from '../flows/flow-hub.js';
import type { ProbeRunner } from '../probes/probe-runner.js';
import type { QuotaActor } from '../main-actors/quota-actor.js';
import type { StateLock } from '../persistence/state-lock.js';
import type { StateStore } from '../persistence/state-store.js';
import type { Placement } from '../placement/placement.js';
import type { Placements } from '../placement/placements.js';
import type { ProcessTable } from '../processes/process-table.js';
import type { LogFileOptions, LogFiles } from '../processes/log-files.js';
import type { PipelineEntry, Registry, WorkspaceEntry } from '../registry/registry.js';
import type { Spawner } from '../spawn/spawner.js';
import type { WorkerPool } from '../workers/worker-pool.js';
import type { RuntimeClock } from './clock.js';
import type { CwdChecks } from './cwd-checks.js';
import type { WhyTrails } from './why-trail.js';
import type { WorkerClocks } from './worker-clocks.js';

/**
 * What the runtime core is made of (runtime-core.ts composes it, part-wiring.ts wires its parts): what each job of the core
 * (worker-inbox, rehosting, workspace-lifecycle, commands-and-pipelines, open-state, shutdown)
 * reads and changes. Only the core's jobs see it; the facade, the CLI and the inspector see
 * `RuntimeView`.
 */
export interface CoreParts {
  readonly logger: Logger;
  readonly logBufferBytes: number;
  readonly clock: RuntimeClock;
  readonly registry: Registry;
  readonly table: ProcessTable;
  /** Every pipeline of a live workspace, finished or not, by id. */
  readonly pipelines: Map<string, PipelineEntry>;
  /** Named pipeline specs, to run again later. */
  readonly savedPipelines: Map<string, PipelineSpec>;
  readonly pool: WorkerPool;
  readonly placements: Placements;
  readonly quota: QuotaActor;
  readonly flows: FlowHub;
  /** Readiness probes, run on this thread when a command actor asks. */
  readonly probes: ProbeRunner;
  /** Why each command and pipeline is as it is: their causal trails. */
  readonly why: WhyTrails;
  readonly spawner: Spawner;
  readonly newId: () => string;
  /** Names this runtime's cgroup parent and its snapshots. */
  readonly runtimeId: string;
  /** What the runtime noticed at start and could not do as asked (e.g. a snapshot it could not read). */
  readonly warnings: string[];
  readonly orphanPolicy: 'kill' | 'adopt';
  readonly inspectors: Set<(record: InspectionRecord) => void>;
  /** New workspaces' cwds, each looked at once per turn. */
  readonly cwdChecks: CwdChecks;
  /** Manual-clock moves, told to every worker. */
  readonly clocks: WorkerClocks;
  /** The environment every workspace starts from (the runtime's own, plus the state mark). */
  baseEnv: Readonly<Record<string, string>>;
  /** The snapshot writer, when the runtime has a stateDir. */
  state: StateStore | null;
  /** Every command's output on disk too, when the runtime has a stateDir (and files are not turned off). */
  logFiles: LogFiles | null;
  readonly logFileOptions: LogFileOptions | false;
  stateLock: StateLock | null;
  closed: boolean;
  /** Worker threads that died and were replaced. */
  workerRestarts: number;
  placementOf(ws: WorkspaceEntry): Placement;
  toWorkspace(ws: WorkspaceEntry, event: WorkspaceEvent): void;
  toChild(ws: WorkspaceEntry, key: string, event: ChildEvent): void;
  warn(message: string): void;
  /** Calls a user's observer; its bug must not stop the others, nor the runtime. */
  notify<T>(observer: (value: T) => void, value: T): void;
}
