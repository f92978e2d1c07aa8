import type { Logger } from 'pino';
import type { ProbeRequest } from '../../protocol/host-requests.js';
import type { ProbeResultEvent } from '../../protocol/machine-events.js';
import type { ReadinessProbe } from '../../protocol/supervision-spec.js';
import type { RunEntry } from '../processes/process-table.js';
import type { CommandEntry, Registry, WorkspaceEntry } from '../registry/registry.js';
import type { SpawnedProcess } from '../spawn/spawner.js';
import { execProbe } from './exec-probe.js';
import { httpProbe } from './http-probe.js';
import { watchLines } from './line-watch.js';
import type { NotifySockets } from './notify-socket.js';
import type { ProbeOutcome } from './probe-outcome.js';
import { tcpProbe } from './tcp-probe.js';

export interface ProbeRunnerDeps {
  registry: Registry;
  runs: { get(runId: string): RunEntry | undefined };
  now: () => number;
  logger: Logger;
  toChild: (ws: WorkspaceEntry, key: string, event: ProbeResultEvent) => void;
  notify: NotifySockets;
}

/**
 * Readiness probes, on the main thread: the command machine decides when to probe (its interval
 * runs on the runtime's clock) and what a result means; this runs them and says what it found.
 * exec, tcp and http run when asked, one at a time per run; line and notify are armed at the
 * spawn and speak once, when the command says it is ready.
 */
export class ProbeRunner {
  /** Probes under way, by run id: a run never has two, and its end abandons the one it has. */
  private readonly inFlight = new Map<string, AbortController>();

  constructor(private readonly deps: ProbeRunnerDeps) {}

  /** Runs one probe of the command's against its run, unless one is still under way. */
  probe(request: ProbeRequest): void {
    const ws = this.deps.registry.get(request.wsId);
    const command = ws?.commands.get(request.key);
    const run = this.deps.runs.get(request.runId);
    const probe = command?.spec.ready;
    if (!ws || !command || !run || !run.alive || !probe || this.inFlight.has(run.id)) return;
    const controller = new AbortController();
    this.inFlight.set(run.id, controller);
    const ended = () => controller.abort();
    void run.exited.promise.then(ended, ended);
    void this.runOnce(probe, command, controller.signal).then((outcome) => {
      this.inFlight.delete(run.id);
      if (controller.signal.aborted || !run.alive) return;
      this.deps.toChild(ws, command.key, { type: 'PROBE_RESULT', at: this.deps.now(), runId: run.id, ok: outcome.ok, detail: outcome.detail });
    });
  }

  private runOnce(probe: ReadinessProbe, command: CommandEntry, signal: AbortSignal): Promise<ProbeOutcome> {
    const timeoutMs = probe.timeoutMs ?? 1000;
    if (probe.exec) return execProbe(probe.exec, { cwd: command.cwd, env: command.env, timeoutMs, signal });
    if (probe.tcp !== undefined) return tcpProbe(probe.tcp, timeoutMs, signal);
    if (probe.http) return httpProbe(probe.http, timeoutMs, signal);
    return Promise.resolve({ ok: false, detail: 'this probe is not polled' });
  }

  /** The NOTIFY_SOCKET a run of `command` will be given, made before it is spawned; null: none. */
  prepare(command: CommandEntry, runToken: string): string | null {
    if (!command.spec.ready?.notify) return null;
    return this.deps.notify.open(runToken);
  }

  /**
   * A new run: its line probe watches its stdout, its notification socket listens; the first
   * sign of readiness is told to its command actor.
   */
  attach(ws: WorkspaceEntry, command: CommandEntry, run: RunEntry, spawned: SpawnedProcess, token: string): void {
    const probe = command.spec.ready;
    if (!probe) return;
    const notifyToken = probe.notify ? token : null;
    const ready = (detail: string) => {
      if (!run.alive) return;
      run.saidReady = detail;
      this.deps.toChild(ws, command.key, { type: 'PROBE_RESULT', at: this.deps.now(), runId: run.id, ok: true, detail });
    };
    if (probe.line !== undefined && spawned.stdout) {
      const pattern = new RegExp(probe.line);
      watchLines(spawned.stdout, pattern, (line) => ready(`stdout: ${line.slice(0, 200)}`));
    }
    if (notifyToken !== null) {
      this.deps.notify.listen(notifyToken, (fields) => {
        if (fields.READY === '1') ready(`notify: READY=1${fields.STATUS ? ` (${fields.STATUS})` : ''}`);
      });
      const close = () => this.deps.notify.close(notifyToken);
      void run.exited.promise.then(close, close);
    }
  }

  /** The socket prepared for a run that never started. */
  forget(token: string): void {
    this.deps.notify.close(token);
  }

  /** Abandons every probe under way (the runtime shuts down). */
  close(): void {
    for (const controller of this.inFlight.values()) controller.abort();
    this.inFlight.clear();
    this.deps.notify.closeAll();
  }
}
