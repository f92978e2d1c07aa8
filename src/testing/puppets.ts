import { execFile } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

// Programs a test controls: a puppet is a shell script that waits for a line on its own FIFO
// and exits with the number it reads. The test holds the FIFO open (read-write, so it never
// blocks and a line written before the program opens it waits in the pipe): one line, one exit.
// Commands get their stdin from /dev/null (or a pipeline edge), so the FIFO is named in argv.
// A puppet ignores SIGTERM (unless told otherwise): a stop waits for its grace, as with a
// program that cleans up slowly.

const run = promisify(execFile);

const SCRIPT = (interpreter: string, ignoreTerm: boolean) =>
  [
    `#!${interpreter}`,
    '# shuma test puppet: exits with the number written to the FIFO named by $1',
    ...(ignoreTerm ? ["trap '' TERM"] : []),
    'read -r code < "$1" || exit 99',
    'exit "$code"',
    '',
  ].join('\n');

/** An interpreter that does not exist: exec fails with ENOENT, as a missing program does. */
const MISSING_INTERPRETER = '/nonexistent/shuma-puppet-interpreter';

export interface Puppet {
  readonly name: string;
  /** The program: give it as `exec`, with `argv` as its arguments. */
  readonly exec: string;
  readonly argv: string[];
  /** The running puppet (of whatever run reads next) exits with `code`. */
  exit(code: number): void;
  /** From now on the program cannot be started: exec fails with ENOENT (its #! names nothing). */
  break(): Promise<void>;
  /** Undoes break(). */
  repair(): Promise<void>;
  readonly broken: boolean;
  /** Whether it ignores SIGTERM. */
  readonly ignoresTerm: boolean;
}

export interface PuppetOptions {
  /** Ignore SIGTERM (default true): only SIGKILL, or its line, ends it. */
  ignoreTerm?: boolean;
}

/** A scratch directory of puppets; close() releases their FIFOs and removes it. */
export class PuppetStage {
  private readonly fds: number[] = [];
  private closed = false;

  private constructor(readonly dir: string) {}

  static async create(prefix = 'shuma-puppets-'): Promise<PuppetStage> {
    return new PuppetStage(await mkdtemp(path.join(tmpdir(), prefix)));
  }

  async puppet(name: string, options: PuppetOptions = {}): Promise<Puppet> {
    const ignoreTerm = options.ignoreTerm ?? true;
    if (this.closed) throw new Error('this puppet stage is closed');
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`a puppet name is letters, digits, '.', '_' or '-' (got ${JSON.stringify(name)})`);
    const exec = path.join(this.dir, `${name}.sh`);
    const fifo = path.join(this.dir, `${name}.fifo`);
    await run('mkfifo', ['-m', '600', fifo]);
    // Read-write: the open does not wait for a reader, and the pipe outlives each reader.
    const fd = openSync(fifo, 'r+');
    this.fds.push(fd);
    const write = async (interpreter: string) => {
      // Replace, never rewrite in place: a running shell reads its script as it goes.
      const next = `${exec}.${process.pid}.tmp`;
      await writeFile(next, SCRIPT(interpreter, ignoreTerm), { mode: 0o755 });
      await rename(next, exec);
    };
    await write('/bin/sh');
    let broken = false;
    return {
      name,
      exec,
      argv: [fifo],
      exit: (code: number) => {
        if (!Number.isInteger(code) || code < 0 || code > 255) throw new RangeError(`exit code 0..255 (got ${code})`);
        writeSync(fd, `${code}\n`);
      },
      break: async () => {
        await write(MISSING_INTERPRETER);
        broken = true;
      },
      repair: async () => {
        await write('/bin/sh');
        broken = false;
      },
      get broken() {
        return broken;
      },
      ignoresTerm: ignoreTerm,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const fd of this.fds.splice(0)) closeSync(fd);
    await rm(this.dir, { recursive: true, force: true });
  }
}

const SIGTERM_BIT = 1n << 14n; // signal 15

/**
 * Resolves once the process `pid` ignores SIGTERM (a puppet past its `trap`: a stop can no longer
 * kill it before its grace), true; false when the process is gone. Until then a SIGTERM would
 * end a puppet that had not yet read its first line, which no test wants. Reads
 * /proc/<pid>/status (Linux), polling with a short, growing delay.
 */
export async function puppetReady(pid: number, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
    let status: string;
    try {
      status = await readFile(`/proc/${pid}/status`, 'latin1');
    } catch {
      return false;
    }
    if (/^State:\s+[ZX]/m.test(status)) return false;
    const ignored = /^SigIgn:\s+([0-9a-f]+)/m.exec(status)?.[1];
    if (ignored !== undefined && (BigInt(`0x${ignored}`) & SIGTERM_BIT) !== 0n) return true;
    if (Date.now() > deadline) throw new Error(`process ${pid} did not become a ready puppet within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
