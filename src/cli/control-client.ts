// The client side of the control socket: one connection, requests answered by id, streams.
import net from 'node:net';
import { ShumaError, type ErrorCode, ERROR_CODES } from '../protocol/errors.js';
import type { ControlOp, ControlRequest, ControlResponse } from '../protocol/control.js';
import { decodeFrame, encodeFrame, FrameReader, MAX_RESPONSE_BYTES } from '../protocol/control-frames.js';
import { parseResponse } from '../protocol/control-parse.js';
import type { ControlResults } from '../protocol/control-results.js';
import { checkSocketPathLength } from './control-paths.js';

type Args<Op extends ControlOp> = Omit<Extract<ControlRequest, { op: Op }>, 'id' | 'op'>;

interface Pending {
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
  onEvent?: (event: unknown) => void;
}

export function noDaemon(socket: string, why: string): ShumaError {
  return new ShumaError('NO_DAEMON', `no shuma daemon at ${socket} (${why}): start one with \`shuma daemon\` (a \`shuma run\` starts one itself)`);
}

export class ControlClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly reader = new FrameReader(MAX_RESPONSE_BYTES);
  private closedWith: Error | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const body of this.reader.push(chunk)) this.dispatch(parseResponse(decodeFrame(body)));
      } catch (error) {
        this.fail(error as Error);
        socket.destroy();
      }
    });
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new ShumaError('NO_DAEMON', 'the daemon closed the connection (did it stop?)')));
  }

  /** Connects, or rejects with NO_DAEMON when nothing listens at `socket`. */
  static connect(socket: string): Promise<ControlClient> {
    checkSocketPathLength(socket);
    return new Promise((resolve, reject) => {
      const conn = net.createConnection(socket);
      conn.once('connect', () => {
        conn.removeAllListeners('error');
        resolve(new ControlClient(conn));
      });
      conn.once('error', (error: NodeJS.ErrnoException) => {
        const why = error.code === 'ENOENT' ? 'no socket there' : error.code === 'ECONNREFUSED' ? 'a stale socket: nothing answers' : error.message;
        reject(error.code === 'ENOENT' || error.code === 'ECONNREFUSED' || error.code === 'ENOTSOCK' ? noDaemon(socket, why) : error);
      });
    });
  }

  /** One request, one answer. */
  call<Op extends ControlOp>(op: Op, args: Args<Op>): Promise<ControlResults[Op]> {
    return this.send(op, args) as Promise<ControlResults[Op]>;
  }

  /** A request whose events arrive before its answer; `cancel()` ends it (the answer follows). */
  stream<Op extends ControlOp>(op: Op, args: Args<Op>, onEvent: (event: unknown) => void): { done: Promise<ControlResults[Op]>; cancel: () => void } {
    const id = this.nextId;
    const done = this.send(op, args, onEvent) as Promise<ControlResults[Op]>;
    return { done, cancel: () => void this.send('cancel', { target: id }).catch(() => undefined) };
  }

  close(): void {
    this.socket.end();
  }

  private send(op: ControlOp, args: object, onEvent?: (event: unknown) => void): Promise<unknown> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, ...(onEvent ? { onEvent } : {}) });
      this.socket.write(encodeFrame({ id, op, ...args }));
    });
  }

  private dispatch(response: ControlResponse): void {
    if (response.kind === 'error' && response.id === null) {
      this.fail(toError(response.error));
      return;
    }
    const pending = this.pending.get(response.id!);
    if (!pending) return; // an event racing a cancel
    if (response.kind === 'event') {
      pending.onEvent?.(response.event);
      return;
    }
    this.pending.delete(response.id!);
    if (response.kind === 'result') pending.resolve(response.result);
    else pending.reject(toError(response.error));
  }

  private fail(error: Error): void {
    this.closedWith ??= error;
    for (const pending of this.pending.values()) pending.reject(this.closedWith);
    this.pending.clear();
  }
}

/** The daemon's error as the ShumaError it was (its message already starts with the code). */
function toError(data: { code: string; message: string }): ShumaError {
  const code = (ERROR_CODES as readonly string[]).includes(data.code) ? (data.code as ErrorCode) : 'INTERNAL';
  const detail = data.message.startsWith(`${data.code}: `) ? data.message.slice(data.code.length + 2) : data.message;
  return new ShumaError(code, detail);
}
