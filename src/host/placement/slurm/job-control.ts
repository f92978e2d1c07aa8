import { constants } from 'node:os';
import { ShumaError } from '../../../protocol/errors.js';
import { controllerUnreachable, expandHostlist, quoteAnswer, runSlurm, type SlurmCluster } from './slurm-cli.js';

// Signals, cancellation and the job's state, through scancel and squeue. A signal to the local
// srun is not a signal to the task: srun answers SIGTERM by cancelling the step outright and a
// first SIGINT by printing its status, so a step is signalled with `scancel --signal`.

/** The ids (J.S) of the job's live steps, by step name. */
export async function listSteps(cluster: SlurmCluster, jobId: string): Promise<Map<string, string[]>> {
  const answer = await runSlurm(cluster, 'squeue', ['--noheader', '--steps', `--jobs=${jobId}`, '--format=%i|%j']);
  const steps = new Map<string, string[]>();
  if (answer.code !== 0) return steps;
  for (const line of answer.stdout.split('\n')) {
    const [id, name] = line.trim().split('|');
    if (!id || !name) continue;
    const list = steps.get(name) ?? [];
    list.push(id);
    steps.set(name, list);
  }
  return steps;
}

/**
 * Sends a signal to steps (J.S). Slurm 22.05's scancel delivers a signal to a step of an --overlap
 * allocation yet exits 225 ("Kill job error … Invalid job id"): its status says nothing, so the
 * step's end (srun's exit) is what tells a caller the signal did its work.
 */
export async function signalSteps(cluster: SlurmCluster, stepIds: readonly string[], signal: NodeJS.Signals): Promise<void> {
  if (stepIds.length === 0) return;
  const number = constants.signals[signal];
  await runSlurm(cluster, 'scancel', ['--quiet', `--signal=${number ?? signal}`, ...stepIds]);
}

export interface JobState {
  /** RUNNING, PENDING, COMPLETING…; null once squeue no longer lists the job. */
  state: string | null;
  nodes: string[];
}

/** The job as squeue lists it now; state null when it is gone. Rejects when the controller does not answer. */
export async function jobState(cluster: SlurmCluster, jobId: string): Promise<JobState> {
  const answer = await runSlurm(cluster, 'squeue', ['--noheader', `--jobs=${jobId}`, '--format=%T|%N']);
  if (answer.code !== 0) {
    if (/Invalid job id/i.test(answer.stderr)) return { state: null, nodes: [] };
    if (controllerUnreachable(answer.stderr)) {
      throw new ShumaError('PLACEMENT_UNAVAILABLE', `the Slurm controller did not answer about job ${jobId}: ${quoteAnswer(answer)}`);
    }
    throw new ShumaError('PLACEMENT_FAILED', `squeue could not tell the state of job ${jobId}: ${quoteAnswer(answer)}`);
  }
  const line = answer.stdout.split('\n').find((l) => l.trim().length > 0);
  if (!line) return { state: null, nodes: [] };
  const [state, list] = line.trim().split('|');
  return { state: state ?? null, nodes: await expandHostlist(cluster, list ?? '') };
}

/** Nodes of the list that Slurm reports down, failed, or no longer responding. */
export async function unhealthyNodes(cluster: SlurmCluster, nodes: readonly string[]): Promise<Set<string>> {
  const lost = new Set<string>();
  if (nodes.length === 0) return lost;
  const answer = await runSlurm(cluster, 'sinfo', ['--noheader', '--Node', `--nodes=${nodes.join(',')}`, '--format=%N|%T']);
  if (answer.code !== 0) return lost;
  for (const line of answer.stdout.split('\n')) {
    const [node, state] = line.trim().split('|');
    if (!node || !state) continue;
    // "*" is "not responding"; DOWN and FAIL end the node's steps; DRAIN lets them run (not lost).
    if (/\*$|^down|^fail/i.test(state)) lost.add(node);
  }
  return lost;
}

/**
 * Ends the job (every step on every node) and waits until squeue no longer lists it, so that
 * "stopped" means the allocation is given back. Rejects if it is still listed after `timeoutMs`.
 */
export async function cancelJob(cluster: SlurmCluster, jobId: string, timeoutMs = 30_000): Promise<void> {
  const cancelled = await runSlurm(cluster, 'scancel', ['--quiet', jobId]);
  if (cancelled.code !== 0 && controllerUnreachable(cancelled.stderr)) {
    throw new ShumaError('PLACEMENT_UNAVAILABLE', `could not cancel Slurm job ${jobId}: ${quoteAnswer(cancelled)}; cancel it by hand (scancel ${jobId}) once the controller is back`);
  }
  const deadline = Date.now() + timeoutMs;
  let delay = 20;
  for (;;) {
    const { state } = await jobState(cluster, jobId);
    if (state === null || state === 'COMPLETED' || state === 'CANCELLED' || state === 'FAILED' || state === 'TIMEOUT' || state === 'NODE_FAIL' || state === 'OUT_OF_MEMORY') return;
    if (Date.now() > deadline) {
      throw new ShumaError('PLACEMENT_FAILED', `Slurm job ${jobId} was cancelled but is still listed as ${state} after ${timeoutMs} ms: see \`squeue -j ${jobId}\``);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 250);
  }
}
