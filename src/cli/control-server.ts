// The daemon's side of the control socket: each connection's frames are decoded (restricted),
// checked, and answered by calling the runtime's public API, so a bad spec gets the API's own
// error. Names (labels) are resolved against the runtime's registry, which is also where `ps`
// reads the command actors' states. A bad frame is answered with an error; one whose length
// cannot be trusted closes that connection; nothing a client sends reaches the other clients.
import type net from 'node:net';
import type { Runtime } from '../host/runtime.js';
import { viewOf, type PipelineView, type RunView, type RuntimeView, type WorkspaceView } from '../host/runtime-view.js';
import type { Workspace } from '../host/workspace-handle.js';
import {
  FrameReader,
  MAX_REQUEST_BYTES,
  decodeFrame,
  encodeFrame,
  parseRequest,
  requestIdOf,
  type ApplyResult,
  type CommandRow,
  type ControlRequest,
  type ControlResponse,
  type HealthResult,
  type LogsRequest,
  type PipelineRow,
  type PipelineStarted,
  type PsResult,
  type StatsEvent,
  type StatsRequest,
  type WhyResult,
} from '../protocol/control.js';
import { isPlainObject } from '../protocol/checks.js';
import { ShumaError, isShumaError } from '../protocol/errors.js';
import { validatePipelineSpec, type PipelineSpec } from '../protocol/pipeline-spec.js';
import { validateCommandSpec } from '../protocol/validate-spec.js';
import { ULID_PATTERN } from '../protocol/checks.js';
import { checkSpecFile } from './spec-file.js';
import { commandsOfWorkspace, findCommand, findPipeline, findWorkspace, resolveCommand, resolveWorkspace, runsOf, type CommandRef } from './names.js';
import { stateText } from './tracked.js';
import { lastLines } from '../protocol/log-lines.js';
import { deleteNamed, flushNamed, restartNamed, stopCommandNamed } from './serve-command-ops.js';
import { createPeerCheck, type PeerCheck } from './peer-check.js';
import { validatePlacement, type PlacementSpec } from '../protocol/placement-spec.js';

/** A client that reads slower than a stream writes is cut off rather than buffered without end. */
const MAX_UNSENT_BYTES = 16 * 1024 * 1024;
/** How often `logs -f` looks for new output: the rings have no event of their own. */
const FOLLOW_POLL_MS = 50;

export interface DaemonInfo {
  socket: string;
  stateDir: string;
  startedAt: number;
}

type Streamed = { result: unknown } | { stream: (emit: (event: unknown) => void, end: (result: unknown) => void) => () => void };

export class ControlServer {
  private readonly core: RuntimeView;
  private readonly connections = new Set<net.Socket>();
  /** Workspaces being made for a new label: concurrent `run -w new` share one, never make two. */
  private readonly creating = new Map<string, Promise<Workspace>>();
  private readonly peers: PeerCheck = createPeerCheck();

  constructor(
    private readonly rt: Runtime,
    private readonly info: DaemonInfo,
  ) {
    this.core = viewOf(rt);
  }

  /** Serves one client until it closes. */
  accept(conn: net.Socket): void {
    const refusal = this.peers.refusal(conn);
    if (refusal !== null) {
      this.core.logger.warn({ refusal }, 'a control socket client was refused');
      conn.on('error', () => conn.destroy());
      const error = new ShumaError('PEER_REFUSED', `this daemon refuses the connection: ${refusal}`);
      conn.end(encodeFrame({ kind: 'error', id: null, ok: false, error: { code: error.code, message: error.message } }));
      return;
    }
    this.connections.add(conn);
    const reader = new FrameReader(MAX_REQUEST_BYTES);
    const streams = new Map<number, () => void>();
    const send = (response: ControlResponse) => {
      if (conn.destroyed) return;
      conn.write(encodeFrame(response));
      if (conn.writableLength > MAX_UNSENT_BYTES) conn.destroy();
    };
    const fail = (id: number | null, error: unknown) => {
      const e = isShumaError(error) ? error : new ShumaError('INTERNAL', (error as Error)?.message ?? String(error));
      send({ kind: 'error', id, ok: false, error: { code: e.code, message: e.message } });
    };
    conn.on('data', (chunk: Buffer) => {
      let bodies: Buffer[];
      try {
        bodies = reader.push(chunk);
      } catch (error) {
        // The length prefix is a lie or a denial of service: the stream cannot be resynchronised.
        fail(null, error);
        conn.end();
        conn.destroySoon();
        return;
      }
      for (const body of bodies) {
        let request: ControlRequest;
        let decoded: unknown = undefined;
        try {
          decoded = decodeFrame(body);
          request = parseRequest(decoded);
        } catch (error) {
          fail(requestIdOf(decoded), error);
          continue;
        }
        void this.handle(request, streams).then(
          (answer) => {
            if ('result' in answer) {
              send({ kind: 'result', id: request.id, ok: true, result: answer.result });
              return;
            }
            let over = false;
            // A stream may end while it starts (its first look finds the command gone): its
            // teardown is then run as soon as it exists.
            let teardown: (() => void) | null = null;
            const end = (result: unknown) => {
              if (over) return;
              over = true;
              teardown?.();
              streams.delete(request.id);
              send({ kind: 'result', id: request.id, ok: true, result });
            };
            teardown = answer.stream((event) => !over && send({ kind: 'event', id: request.id, ok: true, event }), end);
            if (over) teardown();
            else streams.set(request.id, () => end({ cancelled: true }));
          },
          (error: unknown) => fail(request.id, error),
        );
      }
    });
    conn.on('error', () => conn.destroy()); // a client that vanished: its close follows
    conn.on('close', () => {
      this.connections.delete(conn);
      for (const cancel of [...streams.values()]) cancel();
      streams.clear();
    });
  }

  /** A connection the server could not accept (EMFILE, ENFILE, ENOMEM): that client only. */
  acceptFailed(error: NodeJS.ErrnoException): void {
    this.core.logger.warn({ err: { code: error.code, message: error.message } }, 'the control socket could not accept a connection; serving on');
  }

  /** Ends every connection (at shutdown): their streams stop, clients see the close. */
  closeAll(): void {
    for (const conn of this.connections) conn.destroy();
  }

  private async handle(request: ControlRequest, streams: Map<number, () => void>): Promise<Streamed> {
    switch (request.op) {
      case 'ps':
        return { result: this.ps() };
      case 'run': {
        // Checked before a workspace is made for it: a bad spec makes nothing.
        validateCommandSpec(request.spec);
        if (request.placement !== undefined) validatePlacement(request.placement);
        const { ws, created } = await this.workspaceFor(request.workspace, request.placement);
        try {
          const command = await ws.run(request.spec);
          return {
            result: {
              workspace: { id: ws.id, label: ws.label, created },
              command: {
                id: command.id,
                commandKey: command.commandKey,
                label: command.label,
                pid: command.pid,
                ...(this.core.table.get(command.id)?.node !== undefined ? { node: this.core.table.get(command.id)!.node } : {}),
              },
            },
          };
        } catch (error) {
          // Nothing half-made: a workspace made for this command goes with it.
          if (created) await ws.stop({ graceMs: 0 }).catch(() => undefined);
          throw error;
        }
      }
      case 'logs':
        return this.logs(request);
      case 'stop':
        return { result: await this.stop(request.target, request.graceMs) };
      case 'stats':
        return this.stats(request);
      case 'pipelineRun':
        return { result: await this.runPipeline(request.spec) };
      case 'pipelineSave': {
        const spec = checkPipelineArg(request.spec);
        // A saved pipeline names its workspace by id: a label given here is resolved now.
        const ws = typeof spec.workspace === 'string' ? findWorkspace(this.core, spec.workspace) : undefined;
        await this.rt.savePipeline(request.name, { ...spec, workspace: ws ? ws.id : spec.workspace } as unknown as PipelineSpec);
        return { result: { name: request.name } };
      }
      case 'pipelineList':
        return { result: { saved: await this.rt.listSavedPipelines() } };
      case 'pipelineRunSaved': {
        let created = false;
        let wsId: string | undefined;
        // Its workspace, by the name it was saved with unless -w says another: a label no
        // workspace has (any more) makes one, as `pipeline run -w` does.
        const wsName = request.workspace ?? (await this.rt.getSavedPipeline(request.name))?.workspace;
        if (wsName !== undefined) {
          const found = await this.workspaceFor(wsName);
          created = found.created;
          wsId = found.ws.id;
        }
        try {
          const pipe = await this.rt.runSavedPipeline(request.name, wsId === undefined ? {} : { workspace: wsId });
          return { result: this.started(pipe.id, created) };
        } catch (error) {
          if (created && wsId) await this.rt.workspace(wsId)?.stop({ graceMs: 0 }).catch(() => undefined);
          throw error;
        }
      }
      case 'pipelineDrop':
        return { result: { name: request.name, dropped: await this.rt.dropSavedPipeline(request.name) } };
      case 'health':
        return { result: await this.health() };
      case 'apply':
        return { result: await this.apply(request.file) };
      case 'why':
        return { result: await this.why(request.target) };
      case 'flush':
        return { result: await flushNamed(this.core, this.rt, request.target) };
      case 'restart':
        return { result: await restartNamed(this.core, this.rt, request.target) };
      case 'delete':
        return { result: await deleteNamed(this.core, this.rt, request.target, request.graceMs) };
      case 'cancel': {
        const cancel = streams.get(request.target);
        cancel?.();
        return { result: { cancelled: cancel !== undefined } };
      }
    }
  }

  // ── ps, stats ──────────────────────────────────────────────────────────────────────

  private commandRows(ws: WorkspaceView): CommandRow[] {
    const latest = new Map<string, RunView>();
    for (const run of this.core.table.ofWorkspace(ws.id)) latest.set(run.key, run);
    return commandsOfWorkspace(this.core, ws).map(({ key, label }) => {
      const run = latest.get(key);
      const snapshot = ws.commands.get(key)?.snapshot;
      const state = snapshot ? stateText(snapshot.value) : run?.alive ? 'running' : 'exited';
      const restartAt = state === 'backoff' ? Number(snapshot?.context.backoffDeadline ?? 0) || null : null;
      return {
        id: run?.id ?? null,
        commandKey: key,
        label,
        state,
        // A dead process's pid names nothing (and may soon name a stranger): none is shown.
        pid: run?.alive ? run.pid : null,
        alive: run?.alive ?? false,
        restartAt,
        exitStatus: run?.exit?.status ?? null,
        exitSignal: run?.exit?.signal ?? null,
        restarts: run?.restarts ?? 0,
        startedAt: run?.startedAt ?? null,
        logBytes: run ? run.stdout.total + run.stderr.total : 0,
        ...(run?.node !== undefined ? { node: run.node } : {}),
      };
    });
  }

  private pipelineRow(p: PipelineView): PipelineRow {
    const ws = this.core.registry.get(p.wsId);
    return {
      id: p.id,
      label: p.label,
      workspace: { id: p.wsId, label: ws?.label ?? '' },
      state: p.snapshot ? stateText(p.snapshot.value) : 'created',
      nodes: p.currentRuns.map((run) => ({
        label: run.label,
        pid: run.pid,
        commandId: run.id,
        alive: run.alive,
        exitStatus: run.exit?.status ?? null,
        exitSignal: run.exit?.signal ?? null,
      })),
    };
  }

  private ps(): PsResult {
    this.core.ensureOpen();
    const now = this.core.clock.now();
    return {
      workspaces: [...this.core.registry.all()].map((ws) => ({
        id: ws.id,
        label: ws.label,
        state: this.core.stateOf(ws),
        uptimeMs: now - ws.createdAt,
        commands: this.commandRows(ws),
      })),
      pipelines: [...this.core.pipelines.values()].map((p) => this.pipelineRow(p)),
    };
  }

  private async sampleAll(only: WorkspaceView | undefined): Promise<StatsEvent> {
    const list = only ? [only] : [...this.core.registry.all()];
    const workspaces = await Promise.all(
      list.map(async (ws) => ({
        id: ws.id,
        label: ws.label,
        state: this.core.stateOf(ws),
        // A workspace that stopped meanwhile has no sample: its row says so.
        stats: await (this.rt.workspace(ws.id)?.stats() ?? Promise.resolve(null)).catch(() => null),
        commands: this.commandRows(ws),
      })),
    );
    return { at: Date.now(), workspaces };
  }

  private stats(request: StatsRequest): Streamed | Promise<Streamed> {
    this.core.ensureOpen();
    const only = request.workspace === undefined ? undefined : resolveWorkspace(this.core, request.workspace);
    if (request.everyMs === undefined) return this.sampleAll(only).then((result) => ({ result }));
    const everyMs = request.everyMs;
    return {
      stream: (emit, end) => {
        let busy = false;
        const tick = () => {
          if (busy) return; // a slow sample is not queued behind itself
          busy = true;
          if (only && !this.core.registry.get(only.id)) {
            end({ ended: `workspace ${only.label} stopped` });
            return;
          }
          void this.sampleAll(only).then(emit, () => undefined).finally(() => (busy = false));
        };
        tick();
        const timer = setInterval(tick, everyMs);
        return () => clearInterval(timer);
      },
    };
  }

  // ── logs ───────────────────────────────────────────────────────────────────────────

  private logs(request: LogsRequest): Streamed | Promise<Streamed> {
    this.core.ensureOpen();
    const ref = resolveCommand(this.core, request.command);
    const latest = runsOf(this.core, ref).at(-1);
    const rings = (run: RunView) =>
      request.stream === 'both' ? [run.stdout, run.stderr] : [request.stream === 'stdout' ? run.stdout : run.stderr];
    const tail = request.tailBytes ?? 0;
    const lines = request.lines;
    const cut = (data: Buffer) => (lines === undefined ? data : lastLines(data, lines));
    const now = latest ? Buffer.concat(rings(latest).map((ring) => cut(ring.tail(tail)))) : Buffer.alloc(0);
    const command = { id: latest?.id ?? ref.key, label: ref.label, workspace: ref.ws.label };
    if (!request.follow && !ref.pipeline) {
      // Every run of the command, from its files when the daemon keeps them: across relaunches and restarts.
      const query = { stream: request.stream, tailBytes: tail, ...(lines === undefined ? {} : { lines }) };
      return this.rt.workspace(ref.ws.id)!.logs(ref.key, query).then((data) => ({ result: { command, data } }));
    }
    if (!request.follow) return { result: { command, data: now } };
    return {
      stream: (emit, end) => {
        emit({ run: latest ? { id: latest.id, pid: latest.pid } : null, data: now });
        let run = latest;
        let seen = run ? rings(run).map((ring) => ring.total) : [];
        const poll = () => {
          const current = runsOf(this.core, ref).at(-1);
          if (current && current !== run) {
            // A relaunch: what the old run wrote last, then the new one from its start.
            if (run) send(run);
            run = current;
            seen = rings(run).map(() => 0);
            emit({ run: { id: run.id, pid: run.pid } });
          }
          if (run) send(run);
          if (!this.core.registry.get(ref.ws.id)) end({ ended: `workspace ${ref.ws.label} stopped` });
          else if (run && !run.alive && run.outputEnded && this.isFinal(ref)) end({ ended: 'the command ended' });
        };
        const send = (from: RunView) => {
          rings(from).forEach((ring, i) => {
            const fresh = ring.total - seen[i]!;
            if (fresh <= 0) return;
            seen[i] = ring.total;
            const kept = Math.min(fresh, ring.keptBytes);
            emit({ data: ring.tail(kept), ...(kept < fresh ? { skipped: fresh - kept } : {}) });
          });
        };
        const timer = setInterval(poll, FOLLOW_POLL_MS);
        return () => clearInterval(timer);
      },
    };
  }

  /** A command that will not run again: exited, gave up, stopped, failed (or a pipeline node). */
  private isFinal(ref: CommandRef): boolean {
    if (ref.pipeline) return ref.pipeline.done.settled;
    const snapshot = ref.ws.commands.get(ref.key)?.snapshot;
    if (!snapshot) return !runsOf(this.core, ref).some((run) => run.alive);
    return snapshot.status === 'done' || ['exited', 'gaveUp', 'stopped', 'failed', 'lost'].includes(stateText(snapshot.value));
  }

  // ── stop, run, pipelines ───────────────────────────────────────────────────────────

  private async stop(target: string, graceMs: number | undefined) {
    this.core.ensureOpen();
    const ws = findWorkspace(this.core, target);
    const pipe = findPipeline(this.core, target);
    if (ws && pipe) {
      throw new ShumaError('AMBIGUOUS_NAME', `${JSON.stringify(target)} names workspace ${ws.id} and pipeline ${pipe.id}: use an id`);
    }
    const options = graceMs === undefined ? {} : { graceMs };
    if (ws) {
      const result = await this.rt.workspace(ws.id)!.stop(options);
      return { kind: 'workspace' as const, id: ws.id, label: ws.label, ...result };
    }
    if (pipe) {
      const result = await this.rt.pipeline(pipe.id)!.stop(options);
      return { kind: 'pipeline' as const, id: pipe.id, label: pipe.label, ...result };
    }
    const command = findCommand(this.core, target);
    if (command) return stopCommandNamed(this.rt, command, graceMs);
    throw new ShumaError('WORKSPACE_NOT_FOUND', `no workspace, pipeline or command has the id or label ${JSON.stringify(target)}: \`shuma ps\` lists them`);
  }

  /**
   * The workspace a `run` names. A label no workspace has makes one (as `pm2 start` does); a
   * ULID-shaped name is an id, and an unknown id is an error rather than a new label.
   */
  private async workspaceFor(name: string, placement?: PlacementSpec): Promise<{ ws: Workspace; created: boolean }> {
    this.core.ensureOpen();
    // A workspace being made is in the registry before it runs: wait for it to run, rather
    // than find it there and be refused (its actor is still 'created').
    const pending = this.creating.get(name);
    if (pending) return { ws: await pending, created: false };
    const found = findWorkspace(this.core, name);
    if (found) return { ws: this.rt.workspace(found.id)!, created: false };
    if (ULID_PATTERN.test(name)) resolveWorkspace(this.core, name);
    const making = this.rt.createWorkspace({ label: name, ...(placement ? { placement } : {}) });
    this.creating.set(name, making);
    try {
      return { ws: await making, created: true };
    } finally {
      this.creating.delete(name);
    }
  }

  private started(id: string, created: boolean): PipelineStarted {
    const p = this.rt.pipeline(id)!;
    const ws = this.core.registry.get(p.workspace);
    return { id, label: p.label, workspace: { id: p.workspace, label: ws?.label ?? '', created }, nodes: p.nodes };
  }

  private async runPipeline(input: unknown): Promise<PipelineStarted> {
    const spec = checkPipelineArg(input);
    const { ws, created } = await this.workspaceFor(String(spec.workspace));
    try {
      const pipe = await this.rt.runPipeline({ ...spec, workspace: ws.id } as PipelineSpec);
      return this.started(pipe.id, created);
    } catch (error) {
      if (created) await ws.stop({ graceMs: 0 }).catch(() => undefined);
      throw error;
    }
  }

  // ── health, apply, why ─────────────────────────────────────────────────────────────

  private async health(): Promise<HealthResult> {
    const counts = await this.rt.health();
    return {
      pid: process.pid,
      socket: this.info.socket,
      stateDir: this.info.stateDir,
      startedAt: this.info.startedAt,
      uptimeMs: Date.now() - this.info.startedAt,
      ...counts,
      peerCheck: this.peers.unavailable === null,
      warnings: [...this.rt.warnings, ...(this.peers.unavailable === null ? [] : [this.peers.unavailable])],
      inspectorUrl: this.rt.inspectorUrl,
    };
  }

  /** All or nothing: a failure stops every workspace this apply made. */
  private async apply(input: unknown): Promise<ApplyResult> {
    this.core.ensureOpen();
    let file;
    try {
      file = checkSpecFile(input);
    } catch (error) {
      if (isShumaError(error)) throw error;
      throw new ShumaError('INVALID_SPEC', (error as Error).message);
    }
    const labels = file.workspaces.map((w) => w.spec.label);
    for (const [i, label] of labels.entries()) {
      if (labels.indexOf(label) !== i) throw new ShumaError('INVALID_SPEC', `workspaces[${i}].label ${JSON.stringify(label)} is used twice in the file: labels name workspaces`, { field: `workspaces[${i}].label` });
      const live = findWorkspace(this.core, label);
      if (live || this.creating.has(label)) {
        throw new ShumaError(
          'INVALID_ARGUMENT',
          `a workspace labelled ${JSON.stringify(label)} is already running (${live?.id ?? 'being made'}): stop it first (\`shuma stop ${label}\`) or change the label`,
        );
      }
    }
    const made: Workspace[] = [];
    const result: ApplyResult = { workspaces: [] };
    // Claimed before the first await: a concurrent apply or run of the same label waits or is refused.
    const claimed = new Map(file.workspaces.map((w) => [w.spec.label, deferredWorkspace()] as const));
    for (const [label, claim] of claimed) this.creating.set(label, claim.promise);
    try {
      for (const w of file.workspaces) {
        const ws = await this.rt.createWorkspace(w.spec);
        claimed.get(w.spec.label)!.resolve(ws);
        made.push(ws);
        const row: ApplyResult['workspaces'][number] = { id: ws.id, label: ws.label, commands: [], pipelines: [] };
        // Declared together: a dependency may name a command listed after it.
        for (const cmd of await ws.runAll(w.commands)) row.commands.push({ id: cmd.id, label: cmd.label, pid: cmd.pid });
        for (const p of w.pipelines) {
          const pipe = await this.rt.runPipeline({ ...p, workspace: ws.id });
          row.pipelines.push({ id: pipe.id, label: pipe.label });
        }
        result.workspaces.push(row);
      }
    } catch (error) {
      await Promise.all(made.map((ws) => ws.stop({ graceMs: 0 }).catch(() => undefined)));
      for (const claim of claimed.values()) claim.reject(error);
      throw error;
    } finally {
      for (const label of claimed.keys()) this.creating.delete(label);
    }
    return result;
  }

  private async why(target: string): Promise<WhyResult> {
    this.core.ensureOpen();
    const command = findCommand(this.core, target);
    const pipe = findPipeline(this.core, target);
    if (command && pipe) {
      throw new ShumaError('AMBIGUOUS_NAME', `${JSON.stringify(target)} names command ${command.key} and pipeline ${pipe.id}: use an id`);
    }
    if (pipe) return { kind: 'pipeline', id: pipe.id, label: pipe.label, entries: await this.rt.pipeline(pipe.id)!.why() };
    const ref = command ?? resolveCommand(this.core, target);
    if (ref.pipeline) return { kind: 'pipeline', id: ref.pipeline.id, label: ref.pipeline.label, entries: await this.rt.pipeline(ref.pipeline.id)!.why() };
    // Its id as `ps` shows it: the latest run's (the command's key only before any run).
    const id = runsOf(this.core, ref).at(-1)?.id ?? ref.key;
    return { kind: 'command', id, label: `${ref.ws.label}/${ref.label}`, entries: await this.rt.workspace(ref.ws.id)!.why(ref.key) };
  }
}

function deferredWorkspace(): { promise: Promise<Workspace>; resolve: (ws: Workspace) => void; reject: (error: unknown) => void } {
  let resolve!: (ws: Workspace) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<Workspace>((yes, no) => ((resolve = yes), (reject = no)));
  promise.catch(() => undefined); // nobody may be waiting on it
  return { promise, resolve, reject };
}

/** A pipeline spec whose workspace is a name: checked by the API's validator (with the name in place). */
function checkPipelineArg(input: unknown): Record<string, unknown> & { workspace: string } {
  validatePipelineSpec(input);
  if (!isPlainObject(input)) throw new ShumaError('INVALID_SPEC', 'spec must be an object');
  return input as Record<string, unknown> & { workspace: string };
}
