import { ShumaError, serializeError } from '../../protocol/errors.js';
import { stateName } from '../../protocol/state-value.js';
import { validateWorkspaceSpec } from '../../protocol/validate-spec.js';
import { collectChanges, collectSnapshot } from '../persistence/collect.js';
import { restoreCommandEntry, restoreHistory } from './restore-history.js';
import { findMarkedProcesses, killProcesses, STATE_MARK_VARIABLE, stateMark } from '../persistence/orphans.js';
import { knownRunIds, restoreSnapshot, type ChildExit } from '../persistence/restore.js';
import { checkSnapshotData, type PersistedProcess, type PersistedWorkspace, type SnapshotData } from '../persistence/snapshot-data.js';
import { keepSnapshotAside, readSnapshotFile } from '../persistence/snapshot-file.js';
import { acquireStateLock } from '../persistence/state-lock.js';
import { StateStore } from '../persistence/state-store.js';
import path from 'node:path';
import { LogFiles } from '../processes/log-files.js';
import { isSameProcess, type ProcStat } from '../processes/proc.js';
import { launchPlan, unresolvedPlan } from '../spawn/launch-plan.js';
import { newPipelineEntry } from './commands-and-pipelines.js';
import type { CoreParts } from './core-parts.js';
import { hostWorkspace, prepareWorkspace } from './workspace-lifecycle.js';

// Opening a stateDir: its lock taken, the orphans of a runtime that died on it killed (or
// adopted), its snapshot read and every workspace in it brought back under its own id.

/** Takes stateDir's lock, reads its snapshot and brings back what it holds. */
export async function openState(core: CoreParts, stateDir: string): Promise<void> {
  if (core.orphanPolicy !== 'kill' && core.orphanPolicy !== 'adopt') {
    throw new ShumaError('INVALID_ARGUMENT', `options.orphans must be 'kill' or 'adopt' (got ${JSON.stringify(core.orphanPolicy)})`);
  }
  if (typeof stateDir !== 'string' || stateDir.length === 0) {
    throw new ShumaError('INVALID_ARGUMENT', 'options.stateDir must be a directory path');
  }
  core.stateLock = await acquireStateLock(stateDir);
  // Every process started from now on carries the mark; any that carries it now is an orphan
  // of a runtime on this stateDir that died without a shutdown.
  const mark = stateMark(stateDir);
  core.baseEnv = { ...core.baseEnv, [STATE_MARK_VARIABLE]: mark };
  const orphans = findMarkedProcesses(mark);
  const read = await readSnapshotFile(stateDir);
  const data = read.status === 'ok' && checkSnapshotData(read.data) === null ? (read.data as SnapshotData) : null;
  // 'adopt' keeps what the snapshot knows (a run of a restored actor); anything else is killed.
  const adoptable = new Set<string>();
  if (core.orphanPolicy === 'adopt' && data) {
    for (const record of data.workspaces) {
      // Only a run its actor knows: a file of a shuma before one-cut writes (collect.ts) may hold
      // a process whose actor is still starting it, and would start another beside it.
      const known = knownRunIds(record.actor);
      for (const p of record.processes) if (known.has(p.runId) && isSameProcess(p)) adoptable.add(p.runId);
    }
  }
  const adoptedPids = new Set(data?.workspaces.flatMap((r) => r.processes.filter((p) => adoptable.has(p.runId)).map((p) => p.pid)) ?? []);
  const doomed = orphans.filter((p) => !adoptedPids.has(p.pid) && !isDescendantOfAny(p, adoptedPids, orphans));
  if (doomed.length > 0) {
    await killProcesses(doomed);
    core.warn(`${doomed.length} process(es) left running by a runtime that died on ${stateDir} were killed (pids ${doomed.map((p) => p.pid).join(', ')}); supervised commands start again`);
  }
  // A request a runtime that died here left queued with an engine (placement/slurm/orphan-jobs.ts).
  const placedOn = data?.workspaces.flatMap((record) => (record.placement ? [record.placement] : [])) ?? [];
  for (const placement of core.placements.all()) placement.openedState?.(mark, placedOn, (message) => core.warn(message));
  if (adoptedPids.size > 0) {
    core.warn(`${adoptedPids.size} process(es) left running by a runtime that died on ${stateDir} were adopted (pids ${[...adoptedPids].join(', ')}): watched until they exit; their output before the restart is lost`);
  }
  if (core.logFileOptions !== false) {
    core.logFiles = new LogFiles(path.join(stateDir, 'logs'), core.logFileOptions, (file, error) =>
      core.logger.warn({ file, err: serializeError(error) }, 'a log file could not be written; the output is still in memory'),
    );
  }
  core.state = new StateStore(
    stateDir,
    () => collectSnapshot(core.runtimeId, core.registry, core.table, core.savedPipelines, (key) => core.why.get(key)),
    (keeps) => collectChanges(core.runtimeId, core.registry, core.table, core.savedPipelines, (key) => core.why.get(key), keeps),
    core.logger,
    (message) => core.warn(message),
  );
  if (read.status === 'missing') return;
  if (read.status === 'corrupt') {
    core.warn(`the snapshot in ${stateDir} could not be read (${read.reason}): it was kept as ${read.keptAs} and the runtime starts empty`);
    return;
  }
  const problem = checkSnapshotData(read.data);
  if (problem) {
    const keptAs = await keepSnapshotAside(stateDir, 'invalid');
    core.warn(`the snapshot in ${stateDir} is not a shuma state (${problem}): it was kept as ${keptAs} and the runtime starts empty`);
    return;
  }
  core.state.hold();
  let restored: { workspaces: number };
  try {
    restored = await restoreSnapshot(
      {
        savedPipelines: core.savedPipelines,
        warn: (message) => core.warn(message),
        restoreWorkspace: (r, lost, adopted, exits) => restoreWorkspace(core, r, lost, adopted, exits),
      },
      read.data as SnapshotData,
      adoptable,
      core.clock.now(),
    );
  } finally {
    core.state.release();
  }
  core.logger.info({ stateDir, ...restored, savedPipelines: core.savedPipelines.size }, 'state restored');
}

/** A workspace back under its own id, its actor from its persisted snapshot, its timers re-armed. */
async function restoreWorkspace(core: CoreParts, record: PersistedWorkspace, lostKeys: string[], adopted: PersistedProcess[], exits: ChildExit[]): Promise<void> {
  const spec = validateWorkspaceSpec(record.spec);
  const ws = await prepareWorkspace(core, spec, record.id, record.createdAt, record.placement);
  // A crashed runtime's cgroup may still hold what escaped every group: it goes too (unless adopted).
  if (adopted.length === 0) await ws.cgroup?.killAll();
  ws.persisted = record.actor;
  for (const command of record.commands) await restoreCommandEntry(ws, command, null);
  for (const { id, spec: pipelineSpec } of record.pipelines) {
    const nodes = await Promise.all(pipelineSpec.nodes.map((node) => launchPlan(ws, node).catch(() => unresolvedPlan(ws, node))));
    const pipeline = newPipelineEntry(id, ws, pipelineSpec, nodes);
    pipeline.started.resolve();
    ws.pipelines.set(id, pipeline);
    core.pipelines.set(id, pipeline);
  }
  await restoreHistory(core, ws, record.history);
  for (const orphan of adopted) {
    const run = core.table.add(
      {
        id: orphan.runId,
        key: orphan.key,
        wsId: ws.id,
        label: orphan.label,
        pid: orphan.pid,
        restarts: orphan.restarts,
        startedAt: orphan.startedAt,
        pipelineId: orphan.pipelineId ?? undefined,
      },
      core.logBufferBytes,
    );
    ws.groups.add(orphan.pid);
    if (orphan.pipelineId) {
      const pipeline = ws.pipelines.get(orphan.pipelineId);
      pipeline?.groups.add(orphan.pid);
      pipeline?.currentRuns.push(run);
    }
    // An orphan is a process of this machine, found in its /proc: the local placement watches it.
    core.placements.local.adopt(run, orphan.startTime);
  }
  await hostWorkspace(core, ws, {
    type: 'restoreWorkspace',
    wsId: ws.id,
    label: ws.label,
    ttlMs: spec.ttlMs ?? null,
    at: core.clock.now(),
    snapshot: record.actor,
    lostKeys,
  });
  // Exits the host had seen and the actor not yet heard when the file was written: heard now,
  // after RESUME (same port, in order), as the reaper would have told them.
  for (const { key, event } of exits) core.toChild(ws, key, event);
  // Saved mid-stop: its processes are gone; the stop completes now.
  if (stateName(ws.snapshot.value) === 'reaping') core.placementOf(ws).signal(ws, 'SIGKILL');
}

/** Whether `p` descends (by parent links among `processes`) from one of `roots`. */
function isDescendantOfAny(p: ProcStat, roots: ReadonlySet<number>, processes: readonly ProcStat[]): boolean {
  const parentOf = new Map(processes.map((q) => [q.pid, q.ppid]));
  for (let pid = p.ppid, hops = 0; pid > 1 && hops < 64; hops++) {
    if (roots.has(pid)) return true;
    pid = parentOf.get(pid) ?? 1;
  }
  return false;
}
