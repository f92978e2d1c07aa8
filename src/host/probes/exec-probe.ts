import { execFile } from 'node:child_process';
import type { ProbeOutcome } from './probe-outcome.js';

/**
 * Runs a probe program in the command's cwd and environment: ready when it exits 0. Killed
 * (SIGKILL) past its timeout or when `signal` aborts (the probed run ended).
 */
export function execProbe(
  argv: readonly string[],
  options: { cwd: string; env: Readonly<Record<string, string>>; timeoutMs: number; signal: AbortSignal },
): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const [file, ...args] = argv;
    execFile(
      file!,
      args,
      { cwd: options.cwd, env: options.env, timeout: options.timeoutMs, killSignal: 'SIGKILL', signal: options.signal, maxBuffer: 64 * 1024 },
      (error, _stdout, stderr) => {
        if (!error) return resolve({ ok: true, detail: `${file} exited 0` });
        const e = error as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
        if (e.name === 'AbortError') return resolve({ ok: false, detail: 'probe abandoned: the run ended' });
        if (e.killed) return resolve({ ok: false, detail: `${file} timed out after ${options.timeoutMs} ms` });
        const said = String(stderr).trim().split('\n').at(-1)?.slice(0, 200) ?? '';
        const how = typeof e.code === 'number' ? `exited ${e.code}` : `could not run (${String(e.code ?? e.message)})`;
        resolve({ ok: false, detail: `${file} ${how}${said ? `: ${said}` : ''}` });
      },
    );
  });
}
