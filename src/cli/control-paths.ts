// Where the daemon lives, and the checks that keep its control socket to its own user.
//
// Default: one directory, `$SHUMA_HOME` or else `~/.shuma`, holding the socket (`shuma.sock`)
// and the runtime's state (`state/`). Not `$XDG_RUNTIME_DIR`: the state must survive a reboot,
// and a client under sudo, cron or ssh without a session has no XDG_RUNTIME_DIR but must find
// the same daemon. Whoever can connect to the socket can run any program as the daemon's user,
// so the socket's directory must be ours alone: mode 0700 when we make it, and refused when it
// is a symlink, is not ours, or others may write to it (they could swap the socket).
import { lstatSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { ShumaError } from '../protocol/errors.js';

/** sun_path holds 108 bytes with the NUL; Node 20 silently cuts a longer path. */
export const MAX_SOCKET_PATH_BYTES = 107;
export const SOCKET_NAME = 'shuma.sock';

export interface ControlPaths {
  home: string;
  socket: string;
  stateDir: string;
}

export function shumaHome(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.SHUMA_HOME || path.join(homedir(), '.shuma'));
}

/** The socket and state a command uses: its options first, then SHUMA_HOME, then ~/.shuma. */
export function controlPaths(options: { socket?: string | undefined; stateDir?: string | undefined }, env = process.env): ControlPaths {
  const home = shumaHome(env);
  return {
    home,
    socket: path.resolve(options.socket ?? path.join(home, SOCKET_NAME)),
    stateDir: path.resolve(options.stateDir ?? path.join(home, 'state')),
  };
}

export function checkSocketPathLength(socket: string): void {
  const bytes = Buffer.byteLength(socket);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new ShumaError(
      'SOCKET_PATH_TOO_LONG',
      `the socket path ${socket} is ${bytes} bytes; a unix socket path holds at most ${MAX_SOCKET_PATH_BYTES}: ` +
        'pass a shorter --socket, or set SHUMA_HOME to a shorter directory',
    );
  }
}

/**
 * Makes `dir` (mode 0700, parents as needed) or checks the one there: a real directory, owned by
 * this user, writable by no one else. Throws CONTROL_DIR_INVALID saying what to change.
 */
export function ensurePrivateDir(dir: string, what = 'the shuma directory'): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new ShumaError('CONTROL_DIR_INVALID', `${what} ${dir} cannot be made: ${(error as Error).message}`, { cause: (error as NodeJS.ErrnoException).code ?? '' });
    }
  }
  // lstat, not stat: a symlink could point anywhere, and be changed later by whoever owns it.
  const stat = lstatSync(dir);
  if (stat.isSymbolicLink()) {
    throw new ShumaError('CONTROL_DIR_INVALID', `${what} ${dir} is a symbolic link: use the real directory it points to (or another one), so no one can redirect it`);
  }
  if (!stat.isDirectory()) {
    throw new ShumaError('CONTROL_DIR_INVALID', `${what} ${dir} is not a directory: remove it or choose another place`);
  }
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) {
    throw new ShumaError('CONTROL_DIR_INVALID', `${what} ${dir} belongs to uid ${stat.uid}, not to you (uid ${uid}): use a directory of your own`);
  }
  if ((stat.mode & 0o022) !== 0) {
    const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
    throw new ShumaError(
      'CONTROL_DIR_INVALID',
      `${what} ${dir} has mode ${mode}: others can write to it and replace the socket; run \`chmod 700 ${dir}\` or choose another directory`,
    );
  }
}
