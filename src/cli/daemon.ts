// `shuma daemon`: a runtime with persistence, in the foreground, serving the control socket.
// Started by hand (`shuma daemon &`) or by systemd; SIGINT/SIGTERM stop every process gracefully,
// save the state, and remove the socket. The next daemon on the same state brings the workspaces
// back under the same ids.
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createRuntime } from '../create-runtime.js';
import type { Runtime } from '../host/runtime.js';
import { ShumaError } from '../protocol/errors.js';
import { checkSocketPathLength, controlPaths, ensurePrivateDir, type ControlPaths } from './control-paths.js';
import { ControlServer } from './control-server.js';
type RuntimeOptions = NonNullable<Parameters<typeof createRuntime>[0]>;

export interface DaemonOptions {
  socket?: string | undefined;
  stateDir?: string | undefined;
  /** SIGTERM → SIGKILL delay for the processes at shutdown (default 1000 ms). */
  graceMs?: number | undefined;
  /** Rotation and timestamps of the commands' log files (see RuntimeOptions.logFiles). */
  logFiles?: Exclude<RuntimeOptions['logFiles'], false | undefined>;
  /** Finished commands and pipelines each workspace keeps listed (see RuntimeOptions.keepFinished). */
  keepFinished?: number | undefined;
  /** Serve the inspector page on 127.0.0.1 at this port (0: a free one); undefined: none. */
  inspectPort?: number | undefined;
  out?: NodeJS.WritableStream;
}

export interface RunningDaemon {
  paths: ControlPaths;
  runtime: Runtime;
  /** Stops everything (state saved first), removes the socket. */
  close(): Promise<void>;
}

/** Whether something answers at `socket`: a live daemon, as opposed to a file left by a dead one. */
function answers(socket: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socket);
    conn.once('connect', () => {
      conn.destroy();
      resolve(true);
    });
    conn.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED' || error.code === 'ENOENT') resolve(false);
      else reject(new ShumaError('CONTROL_DIR_INVALID', `cannot tell whether a daemon serves ${socket}: ${error.message}`, { cause: error.code ?? '' }));
    });
  });
}

/** Clears the way for our socket: a stale one goes, a live one (another daemon) is refused. */
async function clearSocket(socket: string): Promise<void> {
  let stat;
  try {
    stat = lstatSync(socket);
  } catch {
    return; // nothing there
  }
  if (!stat.isSocket()) {
    throw new ShumaError('CONTROL_DIR_INVALID', `${socket} exists and is not a socket: move it away, or pass another --socket`);
  }
  if (await answers(socket)) {
    throw new ShumaError('DAEMON_RUNNING', `a shuma daemon already serves ${socket}: stop it first (kill its pid: \`shuma health\` shows it), or pass another --socket`);
  }
  unlinkSync(socket);
}

function listen(server: net.Server, socket: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // The socket is born 0600: there is no moment at which it is open to others.
    const umask = process.umask(0o177);
    server.once('error', reject);
    server.listen(socket, () => {
      server.off('error', reject);
      resolve();
    });
    process.umask(umask);
  });
}

export async function startDaemon(options: DaemonOptions = {}): Promise<RunningDaemon> {
  const paths = controlPaths(options);
  checkSocketPathLength(paths.socket);
  ensurePrivateDir(path.dirname(paths.socket), 'the socket directory');
  await clearSocket(paths.socket);
  mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  const startedAt = Date.now();
  const runtime = await createRuntime({
    stateDir: paths.stateDir,
    ...(options.inspectPort === undefined ? {} : { inspector: { port: options.inspectPort } }),
    ...(options.logFiles ? { logFiles: options.logFiles } : {}),
    ...(options.keepFinished === undefined ? {} : { keepFinished: options.keepFinished }),
  });
  const control = new ControlServer(runtime, { socket: paths.socket, stateDir: paths.stateDir, startedAt });
  const server = net.createServer((conn) => control.accept(conn));
  try {
    try {
      await listen(server, paths.socket);
    } catch (error) {
      // Another daemon started between our check and our listen: ask again, now it answers.
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      await clearSocket(paths.socket);
      await listen(server, paths.socket);
    }
    chmodSync(paths.socket, 0o600);
    // Past listen, an error is one failed accept (EMFILE when descriptors run out): that client
    // gets no answer and the daemon serves on. Unheard, it would end the daemon unsaved.
    server.on('error', (error: NodeJS.ErrnoException) => control.acceptFailed(error));
  } catch (error) {
    server.close();
    await runtime.shutdown({ graceMs: 0 });
    throw error;
  }
  const ours = lstatSync(paths.socket).ino;
  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      server.close();
      control.closeAll();
      try {
        await runtime.shutdown({ graceMs: options.graceMs ?? 1000 });
      } finally {
        // Only our own socket: a daemon started after us may have replaced a stale-looking one.
        try {
          if (lstatSync(paths.socket).ino === ours) unlinkSync(paths.socket);
        } catch {
          // already gone
        }
      }
    })());
  return { paths, runtime, close };
}

/** The command: runs until SIGINT/SIGTERM, then exits 0 once everything stopped. */
export async function daemon(options: DaemonOptions): Promise<number> {
  const out = options.out ?? process.stdout;
  // Listening before anything starts: a signal that comes while the runtime starts (or just as
  // the "serving" line is read) must stop the daemon gracefully, not kill it by default action.
  // Kept through the shutdown: a second signal (a second Ctrl-C, systemd and a user both asking)
  // must not kill the daemon half-way and leave its processes without a supervisor.
  let received: (signal: NodeJS.Signals) => void = () => undefined;
  const signalled = new Promise<NodeJS.Signals>((resolve) => (received = resolve));
  let first: NodeJS.Signals | null = null;
  const onSignal = (name: NodeJS.Signals) => {
    if (first) {
      out.write(`shuma daemon: ${name}: already stopping\n`);
      return;
    }
    first = name;
    received(name);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const running = await startDaemon(options);
    const { paths, runtime } = running;
    for (const warning of runtime.warnings) process.stderr.write(`shuma daemon: warning: ${warning}\n`);
    const restored = (await runtime.listWorkspaces()).length;
    out.write(
      `shuma daemon: pid ${process.pid}, serving ${paths.socket}, state in ${paths.stateDir}` +
        `${restored ? `, ${restored} workspace${restored === 1 ? '' : 's'} restored` : ''}\n` +
        (runtime.inspectorUrl ? `shuma daemon: inspector: ${runtime.inspectorUrl}\n` : ''),
    );
    const signal = await signalled;
    out.write(`shuma daemon: ${signal}: stopping every process, saving the state\n`);
    await running.close();
    out.write('shuma daemon: stopped\n');
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
