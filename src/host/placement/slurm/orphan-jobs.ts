import { runSlurm, type SlurmCluster } from './slurm-cli.js';

// A runtime killed while salloc waited (SIGKILL, a crash) leaves its request queued: salloc is
// in the runtime's session but nothing ends it, and once granted it hands the job to nobody. So
// every job a runtime with a stateDir asks for carries, in its comment, that stateDir's mark and
// the runtime's own token; the next runtime on the stateDir cancels the jobs of its mark that are
// neither its own nor known to the snapshot (those are found again by id and kept).

const PREFIX = 'shuma-state=';

/** The comment of the jobs a runtime asks for: its stateDir's mark and its own token. */
export function jobComment(mark: string, token: string): string {
  return `${PREFIX}${mark}/${token}`;
}

export interface OrphanJob {
  jobId: string;
  name: string;
  state: string;
}

/** Cancels the jobs of the mark asked by another runtime and not in `known`; which ones. */
export async function cancelOrphanJobs(cluster: SlurmCluster, mark: string, token: string, known: ReadonlySet<string>): Promise<OrphanJob[]> {
  const listed = await runSlurm(cluster, 'squeue', ['--noheader', '--format=%i|%k|%j|%T'], { timeoutMs: 15_000 });
  if (listed.code !== 0) throw new Error(`squeue: ${listed.stderr.trim() || `exit ${listed.code}`}`);
  const orphans: OrphanJob[] = [];
  for (const line of listed.stdout.split('\n')) {
    const [jobId, comment, name, state] = line.trim().split('|');
    if (!jobId || !comment?.startsWith(`${PREFIX}${mark}/`) || comment === jobComment(mark, token) || known.has(jobId)) continue;
    orphans.push({ jobId, name: name ?? '', state: state ?? '' });
  }
  if (orphans.length > 0) await runSlurm(cluster, 'scancel', ['--quiet', ...orphans.map((job) => job.jobId)], { timeoutMs: 15_000 });
  return orphans;
}
