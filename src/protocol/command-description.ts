// What `ws.describe(cmd)` and `shuma describe <cmd>` tell of one command: everything a user
// would otherwise piece together from `ps`, `why`, the spec they wrote and the state directory.
import type { CommandSpec, ResolvedRestartPolicy, ResourceLimits } from './specs.js';

/** One run of the command (a process it started), newest last. */
export interface RunSummary {
  id: string;
  pid: number;
  startedAt: number;
  alive: boolean;
  /** Null while it runs. */
  exit: { code: number | null; signal: string | null; status: number } | null;
  /** Why it ended when more is known than the status (oom, exit-unknown, node-lost, unhealthy). */
  reason: string | null;
}

export interface CommandDescription {
  /** As `ps` shows it: its latest run's id (the command's key before any run). */
  id: string;
  commandKey: string;
  label: string;
  workspace: { id: string; label: string };
  /** The spec it was given (validated), as `apply` compares it. */
  spec: CommandSpec;
  /** The program that is started (exec resolved on PATH) and where. */
  file: string;
  cwd: string;
  /** The whole environment it starts with: the runtime's, the workspace's, then its own. */
  env: Record<string, string>;
  /** Its workspace's limits (a command has none of its own); null without any. */
  limits: ResourceLimits | null;
  restartPolicy: ResolvedRestartPolicy;
  restarts: number;
  /** The command machine's state, as `ps` shows it (up: spawned, not yet ready; running: ready). */
  state: string;
  /** Whether its readiness probe passed (a command without a probe is ready once up); null once it ended. */
  ready: boolean | null;
  /** Its live process; null when none runs (exited, in backoff, stopped). */
  pid: number | null;
  /** Epoch ms of the next relaunch, while in backoff. */
  restartAt: number | null;
  /** Its last runs, newest last (at most DESCRIBE_RUNS). */
  runs: RunSummary[];
  /** Its log files, when the runtime keeps them (a stateDir); null otherwise. */
  logFiles: { stdout: string; stderr: string } | null;
}

/** How many of a command's runs a description lists. */
export const DESCRIBE_RUNS = 10;
