import { execFile } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ShumaError } from '../../protocol/errors.js';
import { loadSpawnerAddon } from './native-addon.js';

// Real pipes for pipelines. Node has no pipe(2), and its stdio 'pipe' is a socketpair with
// a copy kept in the parent (then `yes | head -1` never ends). The addon's pipe(2) when it is
// built; otherwise a FIFO opened on both ends, which is a kernel pipe too (but costs a mkfifo
// process per pipeline start). The parent hands the ends to the children and closes its own
// copies, so an upstream writer gets SIGPIPE once its reader is gone, exactly as in a shell.

export interface KernelPipe {
  readFd: number;
  writeFd: number;
}

const run = promisify(execFile);

type PipeCall = () => [number, number];
/** The addon's pipe(2), looked up once; null without the addon (or one built before it had pipe). */
let addonPipe: PipeCall | null | undefined;

function nativePipe(): PipeCall | null {
  if (addonPipe === undefined) {
    try {
      const addon = loadSpawnerAddon();
      addonPipe = addon.pipe ? addon.pipe.bind(addon) : null;
    } catch {
      addonPipe = null;
    }
  }
  return addonPipe;
}

/** Opens `count` pipes. The caller must `closePipes()` them once the children hold the ends. */
export async function openPipes(count: number): Promise<KernelPipe[]> {
  if (count === 0) return [];
  const pipe = nativePipe();
  if (pipe) return openNativePipes(pipe, count);
  const dir = mkdtempSync(path.join(tmpdir(), 'shuma-pipes-'));
  const fifos = Array.from({ length: count }, (_, i) => path.join(dir, `p${i}`));
  const opened: KernelPipe[] = [];
  try {
    await run('mkfifo', ['-m', '600', ...fifos]);
    for (const fifo of fifos) {
      // O_RDWR never blocks on a FIFO (Linux), and with it open neither end's open blocks.
      // Node's fs opens with O_CLOEXEC: no other child inherits a stray copy of an end.
      const both = openSync(fifo, constants.O_RDWR);
      try {
        const readFd = openSync(fifo, constants.O_RDONLY);
        opened.push({ readFd, writeFd: openSync(fifo, constants.O_WRONLY) });
      } finally {
        closeSync(both);
      }
    }
    return opened;
  } catch (error) {
    closePipes(opened);
    throw pipesFailed(error);
  } finally {
    // The ends are open: the names are no longer needed by anyone.
    rmSync(dir, { recursive: true, force: true });
  }
}

/** pipe2(O_CLOEXEC) `count` times: no other child inherits a stray copy of an end. */
function openNativePipes(pipe: PipeCall, count: number): KernelPipe[] {
  const opened: KernelPipe[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const [readFd, writeFd] = pipe();
      opened.push({ readFd, writeFd });
    }
    return opened;
  } catch (error) {
    closePipes(opened);
    throw pipesFailed(error);
  }
}

function pipesFailed(error: unknown): ShumaError {
  return new ShumaError('SPAWN_FAILED', `could not make the pipeline's pipes: ${(error as Error).message}`, {
    cause: (error as { code?: string }).code ?? 'EUNKNOWN',
  });
}

/** Closes the parent's copies: from then on only the children hold the pipes. */
export function closePipes(pipes: readonly KernelPipe[]): void {
  for (const pipe of pipes) {
    closeSync(pipe.readFd);
    closeSync(pipe.writeFd);
  }
}

/** Closes pipe ends one by one (a tapped pipeline hands some to children, keeps others). */
export function closeEnds(fds: readonly number[]): void {
  for (const fd of fds) closeSync(fd);
}
