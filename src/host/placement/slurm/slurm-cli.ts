import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ShumaError } from '../../../protocol/errors.js';

// Slurm is driven through its own client programs (salloc, srun, squeue, scancel, sstat): they
// are what every Slurm site has, they speak every protocol version the site's controller does,
// and Debian's 22.05 REST daemon has no endpoints for steps, their output or their stats.

export interface SlurmCluster {
  /** The cluster's slurm.conf: every client program is run with SLURM_CONF set to it. */
  readonly conf: string;
}

export interface SlurmAnswer {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment of a Slurm client program: ours, with the cluster's configuration. Made once
 * per cluster object and source environment, not per call: reading process.env goes through
 * C++ for every variable (60-200 µs for 35 of them here, on the main thread ahead of every
 * salloc), and one object per source lets the spawner reuse its `K=V` strings. So a placement's
 * client programs run with the runtime's environment as it was at its first Slurm call, as its
 * commands run with the environment it had when it was created (runtimeEnv()).
 */
export function slurmEnv(cluster: SlurmCluster, env: Readonly<Record<string, string | undefined>> = process.env): Readonly<Record<string, string>> {
  let bySource = madeEnvs.get(cluster);
  if (!bySource) madeEnvs.set(cluster, (bySource = new WeakMap()));
  let made = bySource.get(env);
  if (!made) {
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(env)) if (value !== undefined) out[key] = value;
    out.SLURM_CONF = cluster.conf;
    bySource.set(env, (made = out));
  }
  return made;
}

const madeEnvs = new WeakMap<SlurmCluster, WeakMap<object, Readonly<Record<string, string>>>>();

export interface RunOptions {
  /** Killed (SIGKILL) after this long; default 30 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Each piece of its stderr as it comes, for programs that say how they are doing (salloc: queued). */
  onStderr?: (chunk: string) => void;
}

/**
 * Runs one Slurm client program to its end. Never rejects for a non-zero exit (the caller reads
 * Slurm's answer); rejects with PLACEMENT_UNAVAILABLE when the program is missing.
 */
export function runSlurm(cluster: SlurmCluster, program: string, args: readonly string[], options: RunOptions = {}): Promise<SlurmAnswer> {
  const { timeoutMs = 30_000, signal, onStderr } = options;
  return new Promise((resolve, reject) => {
    const child = execFile(
      program,
      args,
      { env: slurmEnv(cluster), timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20, encoding: 'utf8', ...(signal ? { signal } : {}) },
      (error, stdout, stderr) => {
        const code = (error as { code?: unknown } | null)?.code;
        if (code === 'ENOENT') {
          reject(
            new ShumaError(
              'PLACEMENT_UNAVAILABLE',
              `${program} was not found on PATH: install Slurm's client programs (Debian: apt-get install slurm-client) or place the workspace locally`,
              { cause: 'ENOENT' },
            ),
          );
          return;
        }
        resolve({ code: error ? (typeof code === 'number' ? code : null) : 0, stdout, stderr });
      },
    );
    if (onStderr) child.stderr?.on('data', (chunk: string) => onStderr(chunk));
  });
}

/** Slurm's answer when no controller could be reached (down, wrong host or port, munge not running). */
export function controllerUnreachable(stderr: string): boolean {
  return /Unable to contact slurm controller|Zero Bytes were transmitted|Connection refused|Communication connection failure|Munge encode failed|Socket timed out on send\/recv/i.test(stderr);
}

/** The last lines of Slurm's answer, as one line for an error message. */
export function quoteAnswer(answer: SlurmAnswer): string {
  const lines = answer.stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  return lines.slice(-3).join(' / ') || `exit status ${answer.code}`;
}

/** The configuration must exist: Slurm's clients otherwise retry for a minute before failing. */
export function checkConf(cluster: SlurmCluster): void {
  if (!existsSync(cluster.conf)) {
    throw new ShumaError(
      'PLACEMENT_UNAVAILABLE',
      `no Slurm configuration at ${cluster.conf}: pass createRuntime({ slurm: { conf } }) or set SLURM_CONF to the cluster's slurm.conf`,
    );
  }
}

/** An error for an answer that says the controller cannot be reached. */
export function unavailable(cluster: SlurmCluster, answer: SlurmAnswer): ShumaError {
  return new ShumaError(
    'PLACEMENT_UNAVAILABLE',
    `the Slurm controller of ${cluster.conf} did not answer (Slurm said: ${quoteAnswer(answer)}): check that slurmctld and munged run and that SlurmctldHost/SlurmctldPort are right`,
  );
}

/** A node list (`n[1-3],m2`) as names, by Slurm's own expansion. */
export async function expandHostlist(cluster: SlurmCluster, list: string): Promise<string[]> {
  if (list.trim() === '' || list === '(null)') return [];
  // Read here when it is the usual form (n[1-2],gpu07): a client call costs tens of ms under load.
  const read = readHostlist(list.trim());
  if (read) return read;
  const answer = await runSlurm(cluster, 'scontrol', ['show', 'hostnames', list]);
  if (answer.code !== 0) throw new ShumaError('PLACEMENT_FAILED', `could not expand the node list ${list}: ${quoteAnswer(answer)}`);
  return answer.stdout.split('\n').map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * Slurm's hostlist syntax (`n[1-3,07],login`), with zero padding kept; null for anything else,
 * which scontrol then expands.
 */
export function readHostlist(list: string): string[] | null {
  const items: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i <= list.length; i++) {
    const c = list[i];
    if (c === '[') depth++;
    else if (c === ']') depth--;
    if (depth < 0 || depth > 1) return null;
    if (i === list.length || (c === ',' && depth === 0)) {
      items.push(list.slice(start, i));
      start = i + 1;
    }
  }
  if (depth !== 0) return null;
  const hosts: string[] = [];
  for (const item of items) {
    const m = /^([^[\]]+)(?:\[([0-9,-]+)\]([^[\]]*))?$/.exec(item);
    if (!m) return null;
    if (m[2] === undefined) {
      hosts.push(m[1]!);
      continue;
    }
    for (const range of m[2].split(',')) {
      const r = /^(\d+)(?:-(\d+))?$/.exec(range);
      if (!r) return null;
      const from = Number(r[1]);
      const to = Number(r[2] ?? r[1]);
      if (to < from || to - from > 100_000) return null;
      for (let n = from; n <= to; n++) hosts.push(`${m[1]}${String(n).padStart(r[1]!.length, '0')}${m[3] ?? ''}`);
    }
  }
  return hosts;
}
