// The daemon's side of the control socket: each connection's frames are decoded (restricted),
// checked, and handed to the operation that answers them (serve-*.ts, each calling the runtime's
// public API, so a bad spec gets the API's own error). A bad frame is answered with an error; one
// whose length cannot be trusted closes that connection; nothing a client sends reaches the
// other clients. An operation answers once, or streams events until it or the client ends it.
import type net from 'node:net';
import type { Runtime } from '../host/runtime.js';
import { viewOf } from '../host/runtime-view.js';
import type { ControlRequest, ControlResponse } from '../protocol/control.js';
import { decodeFrame, encodeFrame, FrameReader, MAX_REQUEST_BYTES } from '../protocol/control-frames.js';
import { parseRequest, requestIdOf } from '../protocol/control-parse.js';
import { ShumaError, isShumaError } from '../protocol/errors.js';
import { createPeerCheck, type PeerCheck } from './peer-check.js';
import { applyFile } from './serve-apply.js';
import { describeNamed } from './serve-describe.js';
import { deleteNamed, flushNamed, restartNamed } from './serve-command-ops.js';
import type { ServeContext, Streamed } from './serve-context.js';
import { health, type DaemonInfo } from './serve-health.js';
import { logs } from './serve-logs.js';
import { ps, stats } from './serve-ps.js';
import { runCommand, runPipeline, runSavedPipeline, savePipeline } from './serve-run.js';
import { stopNamed } from './serve-stop.js';
import { why } from './serve-why.js';
import { WorkspaceMaker } from './serve-workspace-for.js';

export type { DaemonInfo } from './serve-health.js';

/** A client that reads slower than a stream writes is cut off rather than buffered without end. */
const MAX_UNSENT_BYTES = 16 * 1024 * 1024;

export class ControlServer {
  private readonly ctx: ServeContext;
  private readonly connections = new Set<net.Socket>();
  private readonly peers: PeerCheck = createPeerCheck();

  constructor(
    private readonly rt: Runtime,
    private readonly info: DaemonInfo,
  ) {
    const core = viewOf(rt);
    this.ctx = { rt, core, workspaces: new WorkspaceMaker(rt, core) };
  }

  /** Serves one client until it closes. */
  accept(conn: net.Socket): void {
    const refusal = this.peers.refusal(conn);
    if (refusal !== null) {
      this.ctx.core.logger.warn({ refusal }, 'a control socket client was refused');
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
    this.ctx.core.logger.warn({ err: { code: error.code, message: error.message } }, 'the control socket could not accept a connection; serving on');
  }

  /** Ends every connection (at shutdown): their streams stop, clients see the close. */
  closeAll(): void {
    for (const conn of this.connections) conn.destroy();
  }

  /** One request to its operation. */
  private async handle(request: ControlRequest, streams: Map<number, () => void>): Promise<Streamed> {
    const { ctx, rt } = this;
    switch (request.op) {
      case 'ps':
        return { result: ps(ctx) };
      case 'run':
        return { result: await runCommand(ctx, request) };
      case 'logs':
        return logs(ctx, request);
      case 'stop':
        return { result: await stopNamed(ctx, request.target, request.graceMs) };
      case 'stats':
        return stats(ctx, request);
      case 'pipelineRun':
        return { result: await runPipeline(ctx, request.spec) };
      case 'pipelineSave':
        return { result: await savePipeline(ctx, request.name, request.spec) };
      case 'pipelineList':
        return { result: { saved: await rt.listSavedPipelines() } };
      case 'pipelineRunSaved':
        return { result: await runSavedPipeline(ctx, request) };
      case 'pipelineDrop':
        return { result: { name: request.name, dropped: await rt.dropSavedPipeline(request.name) } };
      case 'health':
        return { result: await health(rt, this.info, this.peers) };
      case 'apply':
        return { result: await applyFile(ctx, request) };
      case 'describe':
        return { result: await describeNamed(ctx, request.target) };
      case 'why':
        return { result: await why(ctx, request.target) };
      case 'flush':
        return { result: await flushNamed(ctx.core, rt, request.target) };
      case 'restart':
        return { result: await restartNamed(ctx.core, rt, request.target) };
      case 'delete':
        return { result: await deleteNamed(ctx.core, rt, request.target, request.graceMs) };
      case 'cancel': {
        const cancel = streams.get(request.target);
        cancel?.();
        return { result: { cancelled: cancel !== undefined } };
      }
    }
  }
}
