// Where a workspace's flow sockets live, and why a flowDir is refused.
import { mkdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ShumaError } from '../../protocol/errors.js';
import { MAX_SOCKET_PATH_BYTES } from './flow-socket.js';

/** The workspace's flowDir: made (0700) when missing; it must be a directory. */
export async function userFlowDir(dir: string): Promise<string> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (!(await stat(dir)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'EUNKNOWN';
    throw new ShumaError(
      'INVALID_SPEC',
      `flowDir ${JSON.stringify(dir)} cannot hold flow sockets (${code}): it must be a directory the runtime can create and write`,
      { field: 'flowDir', cause: code },
    );
  }
  return dir;
}

export function tooLong(socketPath: string, own: boolean): ShumaError {
  const bytes = Buffer.byteLength(socketPath);
  const where = own
    ? `the runtime's own flow directory (under TMPDIR, ${tmpdir()}) gives the socket path ${socketPath}`
    : `flowDir gives the socket path ${socketPath}`;
  return new ShumaError(
    'INVALID_SPEC',
    `flowDir: ${where}, ${bytes} bytes long; a unix socket path may have at most ${MAX_SOCKET_PATH_BYTES} bytes ` +
      `(longer ones are silently truncated): set the workspace's flowDir to a directory of at most ` +
      `${MAX_SOCKET_PATH_BYTES - (bytes - Buffer.byteLength(path.dirname(socketPath)))} bytes`,
    { field: 'flowDir' },
  );
}

/** Said when the workspace is made: a flowDir too long for any flow socket path. */
export function flowDirWarnings(spec: { flowDir?: string; cwd?: string }): string[] {
  if (spec.flowDir === undefined) return [];
  const dir = path.resolve(spec.cwd ?? process.cwd(), spec.flowDir);
  // The shortest socket name: '/', a 26-character pipeline id, '.0.sock'.
  const shortest = Buffer.byteLength(dir) + 1 + 26 + '.0.sock'.length;
  if (shortest <= MAX_SOCKET_PATH_BYTES) return [];
  return [
    `flowDir (${dir}) is ${Buffer.byteLength(dir)} bytes long: its flow socket paths would pass the ${MAX_SOCKET_PATH_BYTES}-byte ` +
      `limit of unix sockets, so tapped pipelines in this workspace will be refused; use a directory of at most ` +
      `${MAX_SOCKET_PATH_BYTES - (shortest - Buffer.byteLength(dir))} bytes`,
  ];
}
