import { serializeError } from '../../protocol/errors.js';
import type { ActorSnapshot } from '../../protocol/actor-records.js';
import type { RelaunchOrder, Signal } from '../../protocol/host-requests.js';
import type { WorkspaceSpec } from '../../protocol/specs.js';
import { createWorkspaceCgroup, detectCgroups, removeCgroupParent, type CgroupSupport } from '../cgroup/cgroups.js';
import { unsupportedWarnings } from './workspace-warnings.js';
import { HostActor } from '../main-actors/host-actor.js';
import type { HostActorDeps } from '../main-actors/host-actor-deps.js';
import type { WorkspaceUsage } from '../main-actors/quota-actor.js';
import { Reaper } from '../main-actors/reaper.js';
import { ProcSampler } from '../processes/proc-sampler.js';
import { forgetReusedGroups } from '../processes/reused-groups.js';
import type { RunEntry } from '../processes/process-table.js';
import type { CommandEntry, PipelineEntry, StopScope, WorkspaceEntry } from '../registry/registry.js';
import { findUtility } from '../spawn/launch-plan.js';
import type { Placement, PlacementEvents, PreparedWorkspace } from './placement.js';

/** What local placement lends its host actor, plus what it needs of its own. */
export type LocalPlacementDeps = Pick<
  HostActorDeps,
  'registry' | 'table' | 'spawner' | 'logger' | 'now' | 'newId' | 'logBufferBytes' | 'logFiles' | 'taps' | 'probes' | 'dieWithRuntime'
> & {
  /** Names this runtime's cgroup parent: two runtimes on one machine never share one. */
  runtimeId: string;
  /** The runtime's warnings: what the user must hear of. */
  warn: (message: string) => void;
  events: PlacementEvents;
};

/** What /proc shows of a workspace without processes (read only, by the quota actor). */
const NOTHING_RUNS: WorkspaceUsage = { source: 'proc', rssBytes: 0, cpuUsec: 0, cpuByPid: new Map(), processes: 0, forksRefused: null };

/**
 * Processes on this machine: the host actor spawns and signals them (setsid: one process group
 * each), the reaper reports their exits and waits for a stopping scope to be empty, a cgroup
 * of the workspace's own bounds them when asked, /proc or the cgroup measures them.
 */
export class LocalPlacement implements Placement {
  readonly kind = 'local';
  private readonly host: HostActor;
  private readonly reaper: Reaper;
  /** util-linux's prlimit, found once: rlimits are applied through it (unless the spawner does). */
  private prlimit: string | null | undefined;
  /** util-linux's setpriv, found once: the parent-death signal for child_process's children. */
  private setpriv: string | null | undefined;
  private cgroupSupport: CgroupSupport | undefined;
  /** /proc samplers of the workspaces without a cgroup. */
  private readonly samplers = new Map<string, ProcSampler>();

  constructor(private readonly deps: LocalPlacementDeps) {
    const { registry, table, logger, now, events } = deps;
    // A command's exit reaches its actor through the host actor: a relaunch on a standing order goes first.
    this.reaper = new Reaper({ registry, table, logger, now, toChild: (ws, key, event) => this.host.tellExit(ws, key, event), onScopeEmpty: events.scopeEmpty });
    this.host = new HostActor({
      registry,
      table,
      spawner: deps.spawner,
      reaper: this.reaper,
      logger,
      now,
      newId: deps.newId,
      logBufferBytes: deps.logBufferBytes,
      logFiles: deps.logFiles,
      toChild: events.toChild,
      prlimit: () => this.prlimit ?? null,
      setpriv: () => this.setpriv ?? null,
      dieWithRuntime: deps.dieWithRuntime,
      taps: deps.taps,
      probes: deps.probes,
    });
  }

  async prepare(spec: WorkspaceSpec, wsId: string): Promise<PreparedWorkspace> {
    const { spawner } = this.deps;
    if (!spawner.appliesLimits) {
      this.prlimit ??= await findUtility('prlimit');
      if (this.setpriv === undefined) {
        this.setpriv = await findUtility('setpriv');
        if (this.setpriv === null && this.deps.dieWithRuntime()) {
          this.deps.warn("util-linux's setpriv was not found: with child_process, a command is not killed when the runtime dies without a shutdown (SIGKILL, OOM kill); install util-linux");
        }
      }
    }
    const { cgroup, warnings } = await this.makeCgroup(spec, wsId);
    // Whether it is root matters only for an nproc limit: no getuid() (a system call) for every other workspace.
    const isRoot = spec.limits?.nproc !== undefined && process.getuid?.() === 0;
    const facts = { appliesRlimits: spawner.appliesLimits || this.prlimit !== null, isRoot, cgroupMade: cgroup !== null };
    return { cgroup, warnings: [...warnings, ...unsupportedWarnings(spec, facts)] };
  }

  /** The workspace's own cgroup, when its spec asks for one and the machine allows it. */
  private async makeCgroup(spec: WorkspaceSpec, id: string) {
    if (spec.cgroup === undefined || spec.cgroup === false) return { cgroup: null, warnings: [] };
    this.cgroupSupport ??= detectCgroups();
    return createWorkspaceCgroup(this.cgroupSupport, {
      // A path the user names is theirs, from each hierarchy's root; `true` is ours, under our parent.
      parent: typeof spec.cgroup === 'string' ? '' : `shuma-${this.deps.runtimeId}`,
      name: typeof spec.cgroup === 'string' ? spec.cgroup : id,
      ...(spec.limits?.memoryBytes !== undefined ? { memoryBytes: spec.limits.memoryBytes } : {}),
      ...(spec.limits?.nproc !== undefined ? { nproc: spec.limits.nproc } : {}),
    });
  }

  spawnCommand(ws: WorkspaceEntry, command: CommandEntry, restarts: number, relaunch?: RelaunchOrder): void {
    this.host.spawnCommand(ws, command, restarts, relaunch);
  }

  runAhead(ws: WorkspaceEntry, command: CommandEntry): void {
    this.host.runAhead(ws, command);
  }

  commandMoved(ws: WorkspaceEntry, command: CommandEntry, snapshot: ActorSnapshot): void {
    this.host.commandMoved(ws, command, snapshot);
  }

  commandStopping(ws: WorkspaceEntry, command: CommandEntry): void {
    this.host.commandStopping(ws, command);
  }

  spawnPipeline(ws: WorkspaceEntry, pipeline: PipelineEntry, attempt: number, nodes?: readonly string[]): void {
    this.host.spawnPipeline(ws, pipeline, attempt, nodes);
  }

  releasePipelineInput(pipeline: PipelineEntry, label: string): void {
    this.deps.taps.release(pipeline, label);
  }

  signal(scope: StopScope, signal: Signal): void {
    this.host.signalScope(scope, signal);
  }

  signalRun(ws: WorkspaceEntry, runId: string, signal: Signal): void {
    this.host.signalRun(ws, runId, signal);
  }

  signalInWaves(ws: WorkspaceEntry, waves: string[][]): void {
    this.host.signalInWaves(ws, waves);
  }

  checkEmpty(scope: StopScope): void {
    this.reaper.check(scope);
  }

  /** A process a runtime that died on the same stateDir had started, watched until it exits. */
  adopt(run: RunEntry, startTime: number): void {
    this.reaper.adopt(run, startTime);
  }

  usage(ws: WorkspaceEntry): WorkspaceUsage {
    if (ws.cgroup) {
      const sample = ws.cgroup.sample();
      return { source: 'cgroup', rssBytes: sample.memoryBytes, cpuUsec: sample.cpuUsec, cpuByPid: null, processes: sample.pids ?? 0, forksRefused: sample.forksRefused };
    }
    const alive = this.deps.table.aliveIn(ws);
    forgetReusedGroups(ws.groups, alive);
    const roots = alive.map((run) => run.pid);
    let sampler = this.samplers.get(ws.id);
    // A workspace that never started a process has none to find: no sampler (two maps) for it.
    if (!sampler && roots.length === 0 && ws.groups.size === 0) return NOTHING_RUNS;
    if (!sampler) this.samplers.set(ws.id, (sampler = new ProcSampler()));
    const usage = sampler.sample(roots, ws.groups);
    return { source: 'proc', rssBytes: usage.rssBytes, cpuUsec: usage.cpuUsec, cpuByPid: usage.cpuByPid, processes: usage.processes, forksRefused: null };
  }

  holdsNothing(ws: WorkspaceEntry): boolean {
    return ws.cgroup === null && ws.groups.size === 0 && ws.pendingSpawns === 0 && this.deps.table.aliveIn(ws).length === 0;
  }

  async teardown(ws: WorkspaceEntry): Promise<void> {
    await ws.cgroup?.remove();
  }

  forget(ws: WorkspaceEntry): void {
    this.samplers.get(ws.id)?.close();
    this.samplers.delete(ws.id);
  }

  killNow(ws: WorkspaceEntry): void {
    forgetReusedGroups(ws.groups, this.deps.table.aliveIn(ws));
    for (const pgid of ws.groups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // Already gone: exactly what we want.
      }
    }
  }

  async close(): Promise<void> {
    this.reaper.close();
    for (const sampler of this.samplers.values()) sampler.close();
    this.samplers.clear();
    if (this.cgroupSupport?.version) {
      await removeCgroupParent(this.cgroupSupport, `shuma-${this.deps.runtimeId}`).catch((error: unknown) =>
        this.deps.logger.warn({ err: serializeError(error) }, 'the runtime cgroup parent could not be removed'),
      );
    }
  }
}
