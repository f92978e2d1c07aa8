import { ShumaError } from '../../../protocol/errors.js';
import {
  checkConf,
  controllerUnreachable,
  expandHostlist,
  quoteAnswer,
  runSlurm,
  unavailable,
  type SlurmAnswer,
  type SlurmCluster,
} from './slurm-cli.js';
import { REPORT, reportCommand } from './report-command.js';
import { startSalloc, type SallocProcess, type SallocSpawner } from './salloc-process.js';

// A Slurm-placed workspace is one job: an allocation held by nobody (nothing runs in it until
// shuma starts steps), asked with --no-kill so that losing one node shrinks the job instead of
// ending it, and the restart policy can move a command to a node that is left.
//
// salloc is run with a command, not --no-shell: the command (report-command.ts) prints the job's
// id and node list from the environment salloc gives it, then SIGKILLs salloc. salloc then never
// reaches its "Relinquishing job allocation", so the job stays exactly as --no-shell leaves it
// (held by no process; slurmctld cannot tell the two apart), and the node list comes with the
// grant instead of from a second client call (squeue: as long again as salloc itself).
/** What salloc says when the request cannot be granted now and is queued. */
const QUEUED = /queued and waiting for resources|Pending job allocation/;

export interface AllocationRequest {
  /** The job's name: shuma-<workspace id>, so that a job is found again by name when its id is not known. */
  name: string;
  nodes?: number;
  nodelist?: readonly string[];
  partition?: string;
  account?: string;
  /** Per node: the job's memory, enforced by the job's cgroup on each node. */
  memoryBytes?: number;
  /** shuma's own TTL; the job's --time is this rounded up to whole minutes, plus one, as a backstop. */
  ttlMs?: number;
  /** How long to wait for resources before giving up (salloc --immediate). */
  waitMs: number;
  /** Aborted: the request is withdrawn (salloc ended, what it queued cancelled), allocate() rejects WORKSPACE_STOPPED. */
  signal?: AbortSignal;
  /** Starts salloc off the event loop (the addon's spawner); absent: child_process. */
  spawner?: SallocSpawner;
  /** The job's comment (orphan-jobs.ts: the stateDir's mark, by which a next runtime finds a job this one left). */
  comment?: string;
  /** Called once salloc's start is asked for (see Placement.hostsWhilePreparing). */
  asked?: () => void;
}

export interface Allocation {
  jobId: string;
  nodes: string[];
}

/** --time in whole minutes, always after shuma's own TTL timer (which ends the workspace first). */
export function timeLimitMinutes(ttlMs: number): number {
  return Math.ceil(ttlMs / 60_000) + 1;
}

export function sallocArgs(request: AllocationRequest): string[] {
  const args = ['--no-kill', `--job-name=${request.name}`, `--immediate=${Math.max(1, Math.ceil(request.waitMs / 1000))}`];
  if (request.nodelist && request.nodelist.length > 0) {
    args.push(`--nodelist=${request.nodelist.join(',')}`, `--nodes=${request.nodes ?? request.nodelist.length}`);
  } else {
    args.push(`--nodes=${request.nodes ?? 1}`);
  }
  if (request.partition !== undefined) args.push(`--partition=${request.partition}`);
  if (request.account !== undefined) args.push(`--account=${request.account}`);
  if (request.memoryBytes !== undefined) args.push(`--mem=${Math.max(1, Math.ceil(request.memoryBytes / (1 << 20)))}M`);
  if (request.ttlMs !== undefined) args.push(`--time=${timeLimitMinutes(request.ttlMs)}`);
  if (request.comment !== undefined) args.push(`--comment=${request.comment}`);
  args.push(...reportCommand());
  return args;
}

/**
 * Asks Slurm for the allocation and waits until it is granted. On any failure, no job of that
 * name is left queued, and the error quotes Slurm's answer with how to fix the request.
 *
 * Answers as soon as salloc's command has reported the job and its nodes: the command's very
 * next act is salloc's SIGKILL, and waiting for salloc's end and its pipes' close would add their
 * time to every create. `settled` is that end, awaited by whoever ends the job (job.end()), so
 * that no local process of an allocation outlives its workspace.
 */
export async function allocate(cluster: SlurmCluster, request: AllocationRequest): Promise<Allocation & { settled: Promise<void> }> {
  checkConf(cluster);
  // The partition is looked at only once salloc says it queued the request (a client call costs
  // as much as salloc itself): queued for more nodes than the partition has, it would wait for
  // resources that never come. Then salloc is ended and what it left queued is cancelled.
  let check: Promise<void> | null = null;
  let refusal: unknown = null;
  let reported: (() => void) | null = null;
  const seen = new Promise<null>((resolve) => (reported = () => resolve(null)));
  // Up to its newline: a line cut between two reads would be a node list cut short.
  const report = new RegExp(`^${REPORT} (\\d+) (\\S*)\\n`, 'm');
  const { signal } = request;
  if (signal?.aborted) throw withdrawn();
  const salloc: SallocProcess = await startSalloc(cluster, sallocArgs(request), {
    timeoutMs: request.waitMs + 30_000,
    onStderr: (said) => {
      if (report.test(said)) reported?.();
      if (check || !QUEUED.test(said)) return;
      check = checkPartition(cluster, request).catch((error: unknown) => {
        refusal = error;
        salloc.kill();
      });
    },
    ...(request.spawner ? { spawner: request.spawner } : {}),
    ...(request.asked ? { asked: request.asked } : {}),
  });
  // Withdrawn: salloc is ended at once (synchronously: a runtime exiting cannot wait), what it
  // queued or was granted is cancelled by name below.
  const withdraw = () => salloc.kill();
  signal?.addEventListener('abort', withdraw, { once: true });
  if (signal?.aborted) salloc.kill();
  try {
    return await awaitGrant(cluster, request, salloc, seen, report, () => ({ check, refusal }));
  } finally {
    signal?.removeEventListener('abort', withdraw);
  }
}

async function awaitGrant(
  cluster: SlurmCluster,
  request: AllocationRequest,
  salloc: SallocProcess,
  seen: Promise<null>,
  report: RegExp,
  partition: () => { check: Promise<void> | null; refusal: unknown },
): Promise<Allocation & { settled: Promise<void> }> {
  const ended = await Promise.race([seen, salloc.ended]);
  const said = ended?.stderr ?? salloc.said();
  const granted = /Granted job allocation (\d+)/.exec(said)?.[1];
  const nodelist = report.exec(said);
  if (request.signal?.aborted) {
    await salloc.ended;
    await cancelByName(cluster, request.name);
    throw withdrawn();
  }
  if (ended !== null || !granted || nodelist?.[1] !== granted) {
    const answer = ended ?? (await salloc.ended);
    await partition().check;
    const { refusal } = partition();
    if (refusal) {
      await cancelByName(cluster, request.name);
      throw refusal;
    }
    await cancelByName(cluster, request.name);
    if (controllerUnreachable(answer.stderr)) throw unavailable(cluster, answer);
    if (granted) {
      throw new ShumaError('PLACEMENT_FAILED', `salloc granted job ${granted} but did not report its nodes (${quoteAnswer(answer)}); the job was cancelled`);
    }
    if (answer.signal !== null) {
      // Ended from outside (not by a refusal, a withdrawal or its own wait's end: --immediate exits).
      throw new ShumaError(
        'PLACEMENT_FAILED',
        `salloc was ended by ${answer.signal} before Slurm granted the allocation (Slurm said: ${quoteAnswer(answer)}); what it had queued was cancelled: create the workspace again`,
      );
    }
    throw refused(request, answer);
  }
  const settled = salloc.ended.then(() => undefined);
  try {
    const nodes = await expandHostlist(cluster, nodelist[2]!);
    if (nodes.length === 0) throw new ShumaError('PLACEMENT_FAILED', `job ${granted} was granted with no node (SLURM_JOB_NODELIST is empty)`);
    if (request.signal?.aborted) throw withdrawn();
    return { jobId: granted, nodes, settled };
  } catch (error) {
    await Promise.all([settled, runSlurm(cluster, 'scancel', ['--quiet', granted])]);
    throw error;
  }
}

/**
 * Refuses at once what the partition can never give: salloc would otherwise queue a request for
 * more nodes than the partition has, and wait for resources that will not come.
 */
async function checkPartition(cluster: SlurmCluster, request: AllocationRequest): Promise<void> {
  const answer = await runSlurm(cluster, 'scontrol', ['--oneliner', 'show', 'partition', ...(request.partition ? [request.partition] : [])]);
  if (answer.code !== 0) {
    if (controllerUnreachable(answer.stderr)) throw unavailable(cluster, answer);
    if (request.partition !== undefined && /invalid partition|not found/i.test(answer.stderr + answer.stdout)) {
      throw refused(request, { ...answer, stderr: `invalid partition specified: ${request.partition}` });
    }
    throw refused(request, answer);
  }
  const partitions = answer.stdout.split('\n').filter((line) => line.startsWith('PartitionName='));
  const chosen = request.partition
    ? partitions.find((line) => line.startsWith(`PartitionName=${request.partition} `))
    : partitions.find((line) => / Default=YES /.test(` ${line} `));
  if (!chosen) return; // no default partition: let salloc say what it makes of that
  const name = /^PartitionName=(\S+)/.exec(chosen)?.[1] ?? '?';
  const total = Number(/ TotalNodes=(\d+)/.exec(chosen)?.[1] ?? NaN);
  const wanted = request.nodes ?? request.nodelist?.length ?? 1;
  if (Number.isFinite(total) && wanted > total) {
    throw new ShumaError(
      'PLACEMENT_FAILED',
      `Slurm's partition ${name} has ${total} node(s) (scontrol: TotalNodes=${total}); placement.nodes asked ${wanted}: ask for at most ${total} or choose a larger partition`,
      { field: 'placement.nodes' },
    );
  }
}

function refused(request: AllocationRequest, answer: SlurmAnswer): ShumaError {
  const said = quoteAnswer(answer);
  let fix = 'check the placement fields against `sinfo` and `scontrol show partition`';
  let field: string | undefined;
  if (/invalid partition/i.test(said)) {
    fix = `placement.partition '${request.partition}' does not exist: choose one that \`sinfo --summarize\` lists`;
    field = 'placement.partition';
  } else if (/Invalid node name/i.test(said)) {
    fix = `placement.nodelist names a node Slurm does not know: choose among \`sinfo --Node\``;
    field = 'placement.nodelist';
  } else if (/Memory specification/i.test(said)) {
    fix = 'limits.memoryBytes is more than a node of the partition has: lower it';
    field = 'limits.memoryBytes';
  } else if (/Invalid account/i.test(said)) {
    fix = `placement.account '${request.account}' is not an account of this user: see \`sacctmgr show assoc user=$USER\``;
    field = 'placement.account';
  } else if (/node configuration is not available|Requested node configuration/i.test(said)) {
    fix = 'no node of the partition can satisfy the request (nodes, memory): ask for less';
  } else if (/Connection timed out|queued and waiting|Unable to allocate resources/i.test(said)) {
    fix = `the resources were not free within ${Math.ceil(request.waitMs / 1000)} s: retry later, ask for fewer nodes, or raise slurm.allocationWaitMs`;
  }
  return new ShumaError('PLACEMENT_FAILED', `Slurm refused the allocation (Slurm said: ${said}): ${fix}`, field ? { field } : {});
}

/** What allocate() rejects with once its request was withdrawn (the workspace stopped meanwhile). */
export function withdrawn(): ShumaError {
  return new ShumaError('WORKSPACE_STOPPED', 'the workspace was stopped while Slurm was asked for its allocation: the request was withdrawn, nothing is queued');
}

/** Nothing queued must survive a failed create, whatever state salloc left it in. */
export async function cancelByName(cluster: SlurmCluster, name: string): Promise<void> {
  await runSlurm(cluster, 'scancel', ['--quiet', `--name=${name}`]);
}
