import { ShumaError } from '../protocol/errors.js';
import type { ActorSnapshot } from '../protocol/actor-records.js';
import { observe } from './observers.js';
import type { PlacementInfo } from '../protocol/placement-spec.js';
import type { CommandSpec, WorkspaceSpec } from '../protocol/specs.js';
import { checkCallOptions } from '../protocol/checks.js';
import { commandHandle, commandInfo, type Command, type CommandInfo } from './command-handle.js';
import type { StopResult, WorkspaceEntry } from './registry/registry.js';
import type { QuotaReport, WorkspaceStats } from '../protocol/stats.js';
import type { WhyEntry } from './core/why-trail.js';
import type { RuntimeCore } from './core/runtime-core.js';
import type { CommandDescription } from '../protocol/command-description.js';
import { describeCommand } from './core/command-describe.js';
import { catchUpNow, whenCaughtUp } from './core/caught-up.js';
import type { RunEntry } from './processes/process-table.js';

export interface LogOptions {
  stream?: 'stdout' | 'stderr' | 'both';
  /** The last this many bytes (of each stream, with 'both'); 0 or omitted: all that is kept. */
  tailBytes?: number;
  /** The last this many lines (of each stream, with 'both') instead of bytes. */
  lines?: number;
}

export interface StopOptions {
  /** How long after SIGTERM before SIGKILL (default 1000 ms; 0 = SIGKILL at once). */
  graceMs?: number;
}

/** An actor handle on one workspace. */
export interface Workspace {
  readonly id: string;
  readonly label: string;
  readonly spec: Readonly<WorkspaceSpec>;
  /** What the spec asked that could not be applied, and why. */
  readonly warnings: readonly string[];
  /** Where its processes run: this machine, or a Slurm job and the nodes it holds now. */
  readonly placement: PlacementInfo;
  getSnapshot(): ActorSnapshot;
  subscribe(observer: (snapshot: ActorSnapshot) => void): () => void;
  run(spec: CommandSpec): Promise<Command>;
  /**
   * Commands declared together: their `dependsOn` may name each other in any order (a dependency
   * of run() must name a command already in the workspace). Each starts once its dependencies
   * hold; resolves with all their first runs.
   */
  runAll(specs: CommandSpec[]): Promise<Command[]>;
  commands(): Promise<CommandInfo[]>;
  /** A run (by its id): its ring. A command (key, label or ws/label): every run of it, from its log files when there are (across restarts). */
  logs(commandId: string, options?: LogOptions): Promise<Buffer>;
  /** The causal trail of a command (by any of its run ids, or its commandKey): why it is as it is. */
  why(commandId: string): Promise<WhyEntry[]>;
  /** A fresh sample of the workspace's memory, CPU and processes (appended to the history). */
  stats(): Promise<WorkspaceStats>;
  /** The last `tail` samples, oldest first (all 64 kept when omitted or 0). */
  statsHistory(tail?: number): Promise<WorkspaceStats[]>;
  /** Limits against use now, with human-readable breaches. */
  quota(): Promise<QuotaReport>;
  stop(options?: StopOptions): Promise<StopResult>;
  /** Empties the log files of one command (by id or label), or of all the workspace's commands. */
  flushLogs(idOrLabel?: string): Promise<void>;
  /** Stops one command (by id, label or ws/label); supervision of it ends, the workspace goes on. */
  stopCommand(idOrLabel: string, options?: StopOptions): Promise<{ reaped: number }>;
  /** A new run of the command now: a live one is stopped first (default grace), an ended one runs again. */
  restartCommand(idOrLabel: string): Promise<Command>;
  /** Stopped and forgotten: no longer listed, its label free again. */
  removeCommand(idOrLabel: string, options?: StopOptions): Promise<void>;
  /** One command (by id, label or ws/label): spec, environment, limits, policy, state, last runs, log files. */
  describe(idOrLabel: string): Promise<CommandDescription>;
}

export class WorkspaceHandle implements Workspace {
  readonly id: string;
  readonly label: string;
  readonly spec: Readonly<WorkspaceSpec>;
  readonly warnings: readonly string[];

  constructor(
    private readonly core: RuntimeCore,
    private readonly entry: WorkspaceEntry,
  ) {
    this.id = entry.id;
    this.label = entry.label;
    this.spec = entry.spec;
    this.warnings = Object.freeze([...entry.warnings]);
  }

  get placement(): PlacementInfo {
    const info = this.entry.placement;
    return info.kind === 'slurm' ? { kind: 'slurm', jobId: info.jobId, nodes: [...info.nodes] } : { kind: 'local' };
  }

  getSnapshot(): ActorSnapshot {
    return this.entry.snapshot;
  }

  subscribe(observer: (snapshot: ActorSnapshot) => void): () => void {
    return observe(this.entry.observers, observer);
  }

  async run(spec: CommandSpec): Promise<Command> {
    const run = await this.core.run(this.id, spec);
    return this.handleOf(run);
  }

  async runAll(specs: CommandSpec[]): Promise<Command[]> {
    const runs = await this.core.runAll(this.id, specs);
    return runs.map((run) => this.handleOf(run));
  }

  private handleOf(run: RunEntry): Command {
    const command = this.entry.commands.get(run.key)!;
    return commandHandle(run, command, () => catchUpNow(this.core, this.entry, command));
  }

  async commands(): Promise<CommandInfo[]> {
    this.core.ensureOpen();
    this.core.workspaceEntry(this.id);
    return this.core.table.ofWorkspace(this.id).map(commandInfo);
  }

  async logs(commandId: string, input?: LogOptions): Promise<Buffer> {
    this.core.ensureOpen();
    const options = checkCallOptions(input, 'options', ['stream', 'tailBytes', 'lines']);
    const stream = options.stream ?? 'stdout';
    if (stream !== 'stdout' && stream !== 'stderr' && stream !== 'both') {
      throw new ShumaError('INVALID_ARGUMENT', `stream must be 'stdout', 'stderr' or 'both' (got ${JSON.stringify(stream)})`, {
        field: 'stream',
      });
    }
    const tailBytes = options.tailBytes ?? 0;
    if (!Number.isSafeInteger(tailBytes) || tailBytes < 0) {
      throw new ShumaError('INVALID_ARGUMENT', `tailBytes must be a whole number >= 0 (got ${String(tailBytes)})`, {
        field: 'tailBytes',
      });
    }
    const lines = options.lines;
    if (lines !== undefined && (!Number.isSafeInteger(lines) || lines < 0)) {
      throw new ShumaError('INVALID_ARGUMENT', `lines must be a whole number >= 0 (got ${String(lines)})`, { field: 'lines' });
    }
    return this.core.logs(this.id, commandId, { stream, tailBytes, ...(lines === undefined ? {} : { lines }) });
  }

  /** Answers after the workspace stopped too: the trail says why it did. */
  async why(commandId: string): Promise<WhyEntry[]> {
    this.core.ensureOpen();
    // A run's id names its command from the moment run() resolved, before its actor says so.
    const run = typeof commandId === 'string' ? this.core.table.get(commandId) : undefined;
    const key = run && run.wsId === this.id ? run.key : typeof commandId === 'string' ? this.core.why.resolve(commandId) : '';
    // The API names a command or a pipeline of the workspace (a pipeline's trail is kept under its id).
    if (this.entry.pipelines.has(key)) return this.core.why.get(key);
    const command = this.entry.commands.get(key);
    if (!command) {
      throw new ShumaError(
        'COMMAND_NOT_FOUND',
        `workspace ${this.id} (${this.label}) has no command ${JSON.stringify(commandId)}: commands() lists its commands`,
      );
    }
    // The trail is written from the actor's snapshots: it says what the host told it once it caught up.
    await whenCaughtUp(this.core, this.entry, command);
    return this.core.why.get(key);
  }

  async stats(): Promise<WorkspaceStats> {
    this.core.ensureOpen();
    return this.core.quota.sample(this.core.workspaceEntry(this.id));
  }

  async statsHistory(tail = 0): Promise<WorkspaceStats[]> {
    this.core.ensureOpen();
    if (!Number.isSafeInteger(tail) || tail < 0) {
      throw new ShumaError('INVALID_ARGUMENT', `tail must be a whole number >= 0 (got ${String(tail)})`, { field: 'tail' });
    }
    return this.core.quota.history(this.core.workspaceEntry(this.id), tail);
  }

  async quota(): Promise<QuotaReport> {
    this.core.ensureOpen();
    return this.core.quota.quota(this.core.workspaceEntry(this.id));
  }

  async flushLogs(idOrLabel?: string): Promise<void> {
    this.core.ensureOpen();
    const ws = this.core.workspaceEntry(this.id);
    const key = idOrLabel === undefined ? undefined : this.core.commandControl.resolve(ws, idOrLabel).key;
    await this.core.logFiles?.flush((owner) => owner.wsId === ws.id && (key === undefined || owner.key === key));
  }

  async stopCommand(idOrLabel: string, input?: StopOptions): Promise<{ reaped: number }> {
    this.core.ensureOpen();
    const options = checkCallOptions(input, 'options', ['graceMs']);
    return this.core.commandControl.stop(this.core.workspaceEntry(this.id), idOrLabel, options.graceMs);
  }

  async restartCommand(idOrLabel: string): Promise<Command> {
    this.core.ensureOpen();
    const ws = this.core.workspaceEntry(this.id);
    const run = await this.core.commandControl.restart(ws, idOrLabel);
    return this.handleOf(run);
  }

  async removeCommand(idOrLabel: string, input?: StopOptions): Promise<void> {
    this.core.ensureOpen();
    const options = checkCallOptions(input, 'options', ['graceMs']);
    await this.core.commandControl.remove(this.core.workspaceEntry(this.id), idOrLabel, options.graceMs);
  }

  async describe(idOrLabel: string): Promise<CommandDescription> {
    this.core.ensureOpen();
    const ws = this.core.workspaceEntry(this.id);
    // Read your writes: its state as the actor knows it once told of its latest run.
    await whenCaughtUp(this.core, ws, this.core.commandControl.resolve(ws, idOrLabel));
    return describeCommand(this.core, this.core.commandControl, ws, idOrLabel);
  }

  async stop(input?: StopOptions): Promise<StopResult> {
    this.core.ensureOpen();
    const options = checkCallOptions(input, 'options', ['graceMs']);
    return this.core.stopWorkspace(this.id, options.graceMs, 'requested');
  }
}
