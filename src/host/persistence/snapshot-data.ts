import type { PlacementInfo } from '../../protocol/placement-spec.js';
import type { PlainValue } from '../../protocol/actor-records.js';
import type { PersistedHistory, PersistedRun } from './finished.js';
import type { PipelineSpec } from '../../protocol/pipeline-spec.js';
import type { CommandSpec, ResolvedRestartPolicy, WorkspaceSpec } from '../../protocol/specs.js';

// What the snapshot file holds (inside the versioned envelope of snapshot-file.ts). Deadlines
// (TTL, backoff, grace) live inside the actors' persisted snapshots, as absolute epoch ms.

/** A process the runtime had started: enough to find it again, and never to mistake a reused pid. */
export interface PersistedProcess {
  runId: string;
  key: string;
  pipelineId: string | null;
  label: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat: with the pid, names one process for all time. */
  startTime: number;
  restarts: number;
  startedAt: number;
}

export interface PersistedWorkspace {
  id: string;
  spec: WorkspaceSpec;
  createdAt: number;
  /** The workspace actor's persisted XState snapshot, its children (commands, pipelines) included. */
  actor: PlainValue;
  commands: Array<{ key: string; label: string; spec: CommandSpec; policy: ResolvedRestartPolicy }>;
  pipelines: Array<{ id: string; spec: PipelineSpec }>;
  processes: PersistedProcess[];
  /** Where it was placed, when not this machine: a restart finds its Slurm job again by id. */
  placement?: PlacementInfo;
  /** What ended (finished commands and pipelines, last exits, trails), bounded; absent in older files. */
  history?: PersistedHistory;
  /**
   * Runs that had ended while its actor still held them: the host sees an exit first, its actor
   * a thread crossing later (or once a relaunch on a standing order has started). A restore
   * tells them to the actor as the host would have. Absent when there are none, and in older files.
   */
  unheardExits?: PersistedRun[];
}

export interface SnapshotData {
  runtimeId: string;
  savedPipelines: Record<string, PipelineSpec>;
  workspaces: PersistedWorkspace[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks what a decoded file claims to be before anything is restored from it: a file that
 * decodes but does not have this shape is as corrupt as one that does not decode.
 */
export function checkSnapshotData(value: unknown): string | null {
  if (!isRecord(value)) return 'the data is not a map';
  if (typeof value.runtimeId !== 'string') return 'runtimeId is missing';
  if (!isRecord(value.savedPipelines)) return 'savedPipelines is not a map';
  if (!Array.isArray(value.workspaces)) return 'workspaces is not a list';
  for (const [i, ws] of value.workspaces.entries()) {
    if (!isRecord(ws)) return `workspaces[${i}] is not a map`;
    if (typeof ws.id !== 'string' || !isRecord(ws.spec) || typeof ws.createdAt !== 'number') {
      return `workspaces[${i}] lacks its id, spec or creation time`;
    }
    if (!isRecord(ws.actor)) return `workspaces[${i}].actor is not a persisted snapshot`;
    if (!Array.isArray(ws.commands) || !Array.isArray(ws.pipelines) || !Array.isArray(ws.processes)) {
      return `workspaces[${i}] lacks its commands, pipelines or processes`;
    }
    for (const [j, p] of ws.processes.entries()) {
      if (!isRecord(p) || typeof p.pid !== 'number' || typeof p.startTime !== 'number' || typeof p.runId !== 'string') {
        return `workspaces[${i}].processes[${j}] is not a process record`;
      }
    }
  }
  return null;
}
