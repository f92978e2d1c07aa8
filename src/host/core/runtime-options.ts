import type { Logger } from 'pino';
import { ShumaError } from '../../protocol/errors.js';
import type { InspectionRecord } from '../../protocol/actor-records.js';
import type { RuntimeClock } from './clock.js';
import type { LogFileOptions } from '../processes/log-files.js';

// The options of createRuntime, their defaults and their checks.

export interface RuntimeOptions {
  /** Worker threads hosting the actors (default: 2, or 1 on a single core). */
  workers?: number;
  /** Snapshot and saved pipelines live here; omitted = memory only. */
  stateDir?: string;
  /** Default: a pino logger that stays silent unless SHUMA_LOG_LEVEL is set. */
  logger?: Logger;
  /** Ring buffer size per captured stream (default 1 MiB). */
  logBufferBytes?: number;
  /** Every actor's inspection events, as plain records. */
  inspect?: (record: InspectionRecord) => void;
  /** Where time comes from; tests pass a ManualClock from 'shuma/testing'. */
  clock?: RuntimeClock;
  /** How often the quota actor samples every workspace where something runs (default 1000 ms; 0: only when asked). */
  statsIntervalMs?: number;
  /**
   * What becomes of the processes a runtime killed without a shutdown left running, found at the
   * next start on the same stateDir: 'kill' (default; supervised commands start again) or
   * 'adopt' (the runs the snapshot knows are watched until they exit; their exit status is
   * unknown, reported as -1 with reason 'exit-unknown'; anything else is killed).
   * Unless it is 'adopt' with a stateDir, children also die with the runtime itself, however it
   * dies (PR_SET_PDEATHSIG; docs/reliability.md § When the runtime dies).
   */
  orphans?: 'kill' | 'adopt';
  /**
   * Serves the live inspector page (actors, state charts, timers, event log) on a loopback
   * address only; port 0 picks a free port. The runtime's `inspectorUrl` says where.
   */
  inspector?: { port: number; host?: string };
  /**
   * A Slurm cluster for workspaces placed on it (`placement: { kind: 'slurm' }`): its slurm.conf
   * (default $SLURM_CONF), and how long a create waits for an allocation (default 60 000 ms).
   */
  slurm?: { conf?: string; allocationWaitMs?: number };
  /**
   * With a stateDir, every command's stdout and stderr are also written to files under
   * `<stateDir>/logs` (rotated at `maxBytes`, default 10 MiB, `keep` rotated files, default 3;
   * `timestamps`: each line starts with the time it was read, default false). false: no files.
   */
  logFiles?: false | LogFileOptions;
  /**
   * Finished commands, and finished pipelines, kept per workspace (default 1000 of each): listed,
   * their logs readable, a command restartable. Older ones are forgotten as `removeCommand`
   * forgets one (their log files stay on disk), so that a workspace running one-shot jobs does
   * not grow with every job. Trimmed in steps: up to an eighth more may be listed between trims.
   */
  keepFinished?: number;
}

export interface HealthCounts {
  aliveWorkspaces: number;
  aliveCommands: number;
  alivePipelines: number;
  activeFlows: number;
  /** Actor worker threads that died and were replaced, their actors re-hosted. */
  workerRestarts: number;
  /** How processes are started: 'native' (the addon) or 'node' (child_process). */
  spawner: string;
}

export interface CreateWorkspaceOptions {
  /** Recreate a workspace under the ULID it had before (as the original's `create_with_id`). */
  id?: string;
}

export const DEFAULT_LOG_BUFFER_BYTES = 1024 * 1024;
const RUNTIME_OPTION_FIELDS = ['workers', 'stateDir', 'logger', 'logBufferBytes', 'inspect', 'clock', 'statsIntervalMs', 'orphans', 'inspector', 'slurm', 'logFiles', 'keepFinished'];
export const DEFAULT_STATS_INTERVAL_MS = 1000;

/** Refuses what createRuntime cannot take, saying what is wrong. */
export function checkOptions(options: RuntimeOptions): void {
  for (const key of Object.keys(options)) {
    if (!RUNTIME_OPTION_FIELDS.includes(key)) {
      throw new ShumaError('INVALID_ARGUMENT', `options.${key} is not a runtime option; known: ${RUNTIME_OPTION_FIELDS.join(', ')}`);
    }
  }
  const { workers, logBufferBytes } = options;
  if (workers !== undefined && (!Number.isSafeInteger(workers) || workers < 1 || workers > 64)) {
    throw new ShumaError('INVALID_ARGUMENT', `options.workers must be a whole number from 1 to 64 (got ${String(workers)})`);
  }
  if (logBufferBytes !== undefined && (!Number.isSafeInteger(logBufferBytes) || logBufferBytes < 0)) {
    throw new ShumaError('INVALID_ARGUMENT', `options.logBufferBytes must be a whole number >= 0 (got ${String(logBufferBytes)})`);
  }
  if (options.orphans !== undefined && options.orphans !== 'kill' && options.orphans !== 'adopt') {
    throw new ShumaError('INVALID_ARGUMENT', `options.orphans must be 'kill' or 'adopt' (got ${JSON.stringify(options.orphans)})`);
  }
  checkLogFileOptions(options.logFiles);
  const keep = options.keepFinished;
  if (keep !== undefined && (!Number.isSafeInteger(keep) || keep < 0)) {
    throw new ShumaError('INVALID_ARGUMENT', `options.keepFinished must be a whole number >= 0 (got ${String(keep)}): how many finished commands and pipelines each workspace keeps`);
  }
  const interval = options.statsIntervalMs;
  if (interval !== undefined && (!Number.isSafeInteger(interval) || interval < 0 || interval > 2 ** 31 - 1)) {
    throw new ShumaError('INVALID_ARGUMENT', `options.statsIntervalMs must be a whole number of ms >= 0 (got ${String(interval)})`);
  }
  if (options.slurm !== undefined) checkSlurmOptions(options.slurm);
  if (options.inspect !== undefined && typeof options.inspect !== 'function') {
    throw new ShumaError('INVALID_ARGUMENT', 'options.inspect must be a function that takes an inspection record');
  }
}

function checkSlurmOptions(slurm: unknown): void {
  if (typeof slurm !== 'object' || slurm === null || Array.isArray(slurm)) {
    throw new ShumaError('INVALID_ARGUMENT', 'options.slurm must be an object: { conf?: string, allocationWaitMs?: number }');
  }
  const o = slurm as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (key !== 'conf' && key !== 'allocationWaitMs') throw new ShumaError('INVALID_ARGUMENT', `options.slurm.${key} is not a Slurm option; known: conf, allocationWaitMs`);
  }
  if (o.conf !== undefined && (typeof o.conf !== 'string' || o.conf.length === 0)) {
    throw new ShumaError('INVALID_ARGUMENT', 'options.slurm.conf must be the path of the cluster\'s slurm.conf');
  }
  const wait = o.allocationWaitMs;
  if (wait !== undefined && (typeof wait !== 'number' || !Number.isSafeInteger(wait) || wait < 1000)) {
    throw new ShumaError('INVALID_ARGUMENT', `options.slurm.allocationWaitMs must be a whole number of ms >= 1000 (got ${String(wait)})`);
  }
}

function checkLogFileOptions(value: RuntimeOptions['logFiles']): void {
  if (value === undefined || value === false) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ShumaError('INVALID_ARGUMENT', 'options.logFiles must be false or { maxBytes?, keep?, timestamps? }');
  }
  for (const key of Object.keys(value)) {
    if (!['maxBytes', 'keep', 'timestamps'].includes(key)) {
      throw new ShumaError('INVALID_ARGUMENT', `options.logFiles.${key} is not a log file option; known: maxBytes, keep, timestamps`);
    }
  }
  if (value.maxBytes !== undefined && (!Number.isSafeInteger(value.maxBytes) || value.maxBytes < 1024)) {
    throw new ShumaError('INVALID_ARGUMENT', `options.logFiles.maxBytes must be a whole number >= 1024 (got ${String(value.maxBytes)})`);
  }
  if (value.keep !== undefined && (!Number.isSafeInteger(value.keep) || value.keep < 0 || value.keep > 100)) {
    throw new ShumaError('INVALID_ARGUMENT', `options.logFiles.keep must be a whole number from 0 to 100 (got ${String(value.keep)})`);
  }
  if (value.timestamps !== undefined && typeof value.timestamps !== 'boolean') {
    throw new ShumaError('INVALID_ARGUMENT', `options.logFiles.timestamps must be true or false (got ${String(value.timestamps)})`);
  }
}
