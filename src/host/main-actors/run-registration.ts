import { serializeError } from '../../protocol/errors.js';
import type { RunEntry } from '../processes/process-table.js';
import type { PipelineEntry, WorkspaceEntry } from '../registry/registry.js';
import type { SpawnedProcess } from '../spawn/spawner.js';
import type { HostActorDeps } from './host-actor-deps.js';

// A process the host started becomes a run: in the process table, its output captured (ring,
// log files), its exit watched by the reaper. One place for commands and pipeline nodes alike.

export function registerRun(
  deps: HostActorDeps,
  ws: WorkspaceEntry,
  spawned: SpawnedProcess,
  run: { key: string; label: string; restarts: number; pipeline?: PipelineEntry; timestamps: boolean | undefined },
): RunEntry {
  const entry = deps.table.add(
    {
      id: deps.newId(),
      key: run.key,
      wsId: ws.id,
      label: run.label,
      pid: spawned.pid,
      restarts: run.restarts,
      startedAt: deps.now(),
      pipelineId: run.pipeline?.id,
      ...(spawned.node !== undefined ? { node: spawned.node } : {}),
    },
    deps.logBufferBytes,
  );
  // Spawned as a process group's leader: the pid is also the process group id.
  ws.groups.add(entry.pid);
  run.pipeline?.groups.add(entry.pid);
  // Null when the stream feeds a pipe (an edge, tapped or not); captured otherwise.
  // The ring is the fast path; a file only queues the chunk for a batched write after this turn.
  const files = deps.logFiles()?.open({ wsId: ws.id, key: run.key, label: run.label }, run.timestamps) ?? null;
  // A read that fails (ECONNRESET on child_process's socketpairs, EIO) ends that capture, said
  // in the log; unheard, the 'error' would end the runtime. The stream closes after it.
  const readFailed = (stream: 'stdout' | 'stderr') => (error: NodeJS.ErrnoException) =>
    deps.logger.warn({ ws: ws.id, run: entry.id, pid: entry.pid, stream, err: serializeError(error) }, 'reading a command\'s output failed');
  if (spawned.captureInto) {
    // The native spawner reads straight into the ring; the files copy what 'data' shows them.
    // Its streams are made when first asked for: a silent output never needs one.
    spawned.captureInto('stdout', entry.stdout, readFailed('stdout'));
    spawned.captureInto('stderr', entry.stderr, readFailed('stderr'));
    if (files) {
      spawned.stdout?.on('data', (chunk: Buffer) => files.stdout.write(chunk));
      spawned.stderr?.on('data', (chunk: Buffer) => files.stderr.write(chunk));
    }
  } else {
    if (files) {
      spawned.stdout?.on('data', (chunk: Buffer) => (entry.stdout.write(chunk), files.stdout.write(chunk)));
      spawned.stderr?.on('data', (chunk: Buffer) => (entry.stderr.write(chunk), files.stderr.write(chunk)));
    } else {
      spawned.stdout?.on('data', (chunk: Buffer) => entry.stdout.write(chunk));
      spawned.stderr?.on('data', (chunk: Buffer) => entry.stderr.write(chunk));
    }
    spawned.stdout?.on('error', readFailed('stdout'));
    spawned.stderr?.on('error', readFailed('stderr'));
  }
  deps.reaper.watch(entry, spawned);
  deps.logger.info(
    {
      ws: ws.id,
      command: entry.key,
      run: entry.id,
      pid: entry.pid,
      label: entry.label,
      restarts: entry.restarts,
      ...(entry.pipelineId ? { pipeline: entry.pipelineId } : {}),
    },
    'command spawned',
  );
  return entry;
}
