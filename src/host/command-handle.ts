import type { ActorSnapshot } from '../protocol/actor-records.js';
import { observe } from './observers.js';
import type { ExitInfo } from './processes/exit-info.js';
import type { RunEntry, RunReason } from './processes/process-table.js';
import type { CommandEntry } from './registry/registry.js';

export interface CommandInfo {
  id: string;
  label: string;
  pid: number;
  alive: boolean;
  exitStatus: number | null;
  exitSignal: NodeJS.Signals | null;
  /** 'oom' when the kernel's OOM killer ended it (status 137); 'exit-unknown' for an adopted orphan; 'unhealthy' when its liveness probe failed and shuma ended it; 'startTimeout' when it was not ready within its probe's startTimeoutMs. */
  reason: RunReason;
  /** Where it runs, for a Slurm-placed workspace: a node of the allocation. */
  node?: string;
  /** Bytes written to stdout and stderr in all, including what the ring buffers let go. */
  logBytes: number;
  pipelineId?: string;
  /** Relaunches of this command before this run. */
  restarts: number;
  /** The supervised command this run belongs to: every relaunch shares it. */
  commandKey: string;
  startedAt: number;
}

/** One run of a command: a process. A relaunch is a new Command with a new id. */
export interface Command {
  readonly id: string;
  readonly label: string;
  readonly pid: number;
  /** The id of the supervised command: the same for every relaunch. */
  readonly commandKey: string;
  /** This run's exit, once its output has been read. */
  readonly exited: Promise<ExitInfo>;
  /** The command actor (`starting`, `running`, `backoff`, `restarting`, `exited`…). */
  getSnapshot(): ActorSnapshot | null;
  subscribe(observer: (snapshot: ActorSnapshot) => void): () => void;
}

/** `catchUp` makes the actor's mirror include what the host has told it (core/caught-up.ts). */
export function commandHandle(run: RunEntry, command: CommandEntry, catchUp: () => void): Command {
  return {
    id: run.id,
    label: run.label,
    pid: run.pid,
    commandKey: run.key,
    exited: run.exited.promise,
    getSnapshot: () => {
      catchUp();
      return command.snapshot;
    },
    subscribe: (observer) => observe(command.observers, observer),
  };
}

export function commandInfo(run: RunEntry): CommandInfo {
  return {
    id: run.id,
    label: run.label,
    pid: run.pid,
    alive: run.alive,
    exitStatus: run.exit?.status ?? null,
    exitSignal: run.exit?.signal ?? null,
    reason: run.reason,
    logBytes: run.stdout.total + run.stderr.total,
    ...(run.pipelineId ? { pipelineId: run.pipelineId } : {}),
    ...(run.node !== undefined ? { node: run.node } : {}),
    restarts: run.restarts,
    commandKey: run.key,
    startedAt: run.startedAt,
  };
}
