import { serializeError } from '../../../protocol/errors.js';
import type { Signal } from '../../../protocol/host-requests.js';
import type { Logger } from 'pino';
import { listSteps, signalSteps } from './job-control.js';
import type { SlurmCluster } from './slurm-cli.js';

// Signals to a Slurm placement's runs. A signal to srun is not a signal to the task (srun cancels
// its step on SIGTERM, prints its status on a first SIGINT), so a step is signalled by name with
// `scancel --signal`; only a step not listed yet (srun still starting) gets its srun signalled.

/** How long a step signalled with SIGKILL may take to end before its local srun is killed too. */
export const KILL_SRUN_AFTER_MS = 2000;

/** A live run of the placement: its local srun's pid and its step's name. */
export interface NamedStep {
  pid: number;
  name: string;
}

export interface StepSignalDeps {
  logger: Logger;
  /** Whether this srun still runs as one of ours: a pid that ended may already be someone else's. */
  isLiveSrun(pid: number): boolean;
}

/** scancel --signal to each step by name; a step not yet listed gets its srun signalled. */
export async function signalNamedSteps(
  deps: StepSignalDeps,
  cluster: SlurmCluster,
  jobId: string,
  runs: readonly NamedStep[],
  signal: Signal | 'SIGPIPE',
): Promise<void> {
  const toSrun: NodeJS.Signals = signal === 'SIGKILL' ? 'SIGKILL' : 'SIGTERM';
  try {
    const steps = await listSteps(cluster, jobId);
    await signalSteps(cluster, runs.flatMap((run) => steps.get(run.name) ?? []), signal);
    // srun cancels its step on SIGTERM; SIGPIPE to srun would only end srun, not the task.
    for (const run of runs) if (!steps.has(run.name) && deps.isLiveSrun(run.pid)) killGroup(run.pid, toSrun);
  } catch (error) {
    deps.logger.warn({ job: jobId, signal, err: serializeError(error) }, 'could not signal Slurm steps; signalling their sruns');
    for (const run of runs) if (deps.isLiveSrun(run.pid)) killGroup(run.pid, toSrun);
  }
  if (signal === 'SIGKILL') for (const run of runs) killSrunLater(deps, run.pid);
}

/** An srun that does not end after its step was killed (its node gone) is killed itself — if still ours. */
export function killSrunLater(deps: Pick<StepSignalDeps, 'isLiveSrun'>, pid: number): void {
  setTimeout(() => {
    if (deps.isLiveSrun(pid)) killGroup(pid);
  }, KILL_SRUN_AFTER_MS).unref();
}

export function killGroup(pgid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // Already gone.
  }
}
