// The shapes users hand to the runtime. Validation lives in validate-spec.ts.
import type { Dependency, ReadinessProbe, SupervisionSpec } from './supervision-spec.js';

export type { Dependency, ReadinessProbe, SupervisionSpec } from './supervision-spec.js';

/** Where a workspace's processes run: this machine (default) or a Slurm allocation (docs/placement.md). */
export type PlacementSpec =
  | { kind: 'local' }
  | { kind: 'slurm'; nodes?: number; nodelist?: string[]; partition?: string; account?: string };
/** What a workspace was placed on: for Slurm, its job and the nodes it holds now. */
export type PlacementInfo = { kind: 'local' } | { kind: 'slurm'; jobId: string; nodes: string[] };

export type QuotaAction = 'none' | 'log' | 'kill';

export interface ResourceLimits {
  memoryBytes?: number;
  nproc?: number;
  nofile?: number;
  cpuSeconds?: number;
}

export interface WorkspaceSpec {
  label: string;
  /** Stop the workspace automatically this long after it was created. */
  ttlMs?: number;
  limits?: ResourceLimits;
  quota?: { memory?: QuotaAction; nproc?: QuotaAction };
  cgroup?: boolean | string;
  cwd?: string;
  env?: Record<string, string>;
  flowDir?: string;
  /** How the workspace's commands are supervised together (OTP's strategies and intensity). */
  supervision?: SupervisionSpec;
  /**
   * Named groups, each its own OTP supervisor over the commands that name it (CommandSpec.group);
   * the commands that name none are supervised by `supervision`.
   */
  groups?: Record<string, SupervisionSpec>;
  /** Where its processes run: this machine (default) or a Slurm allocation (placement-spec.ts). */
  placement?: PlacementSpec;
}

export interface RestartPolicy {
  onFailure: boolean;
  /** Relaunch after any exit, a success too (PM2's default), with the same backoff. */
  always?: boolean;
  /** First delay before a relaunch (default 200 ms); doubles after every failure. */
  backoffMs?: number;
  /** Ceiling of the doubling (default 30 000 ms). */
  maxBackoffMs?: number;
  /** Give up after this many relaunches; 0 (default) never gives up. */
  maxRestarts?: number;
  /**
   * A run that lasted at least this long resets the delay to `backoffMs` (PM2 and
   * supervisord do the same), so a service that crashes once a day does not wait 30 s.
   * Default 30 000 ms; 0 disables the reset.
   */
  resetAfterMs?: number;
}

export interface CommandSpec {
  exec: string;
  argv?: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** Unique within its workspace; the program's name (made unique with -2, -3…) when omitted. */
  label?: string;
  restart?: RestartPolicy;
  /** How to tell that it serves: 'up' (spawned) is not 'ready'. */
  ready?: ReadinessProbe;
  /** Commands of the same workspace that must be started, ready or succeeded before this one starts. */
  dependsOn?: Dependency[];
  /** Slurm placement: the allocation's node to run on (default: the least busy live one). */
  node?: string;
  /** The named group of its workspace (WorkspaceSpec.groups) that supervises it; default: the workspace's own. */
  group?: string;
  /** Each line of its log files starts with the time it was read (PM2's `--time`). */
  timestamps?: boolean;
}

/** A restart policy with every default filled in. */
export interface ResolvedRestartPolicy {
  onFailure: boolean;
  always: boolean;
  backoffMs: number;
  maxBackoffMs: number;
  maxRestarts: number;
  resetAfterMs: number;
}

export const RESTART_DEFAULTS: ResolvedRestartPolicy = {
  onFailure: false,
  always: false,
  backoffMs: 200,
  maxBackoffMs: 30_000,
  maxRestarts: 0,
  resetAfterMs: 30_000,
};

export const DEFAULT_GRACE_MS = 1000;

/** Node's timers overflow past 2^31-1 ms (they fire at once): every duration stays below. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
