import type { SlurmJob } from './slurm-job.js';

/** The job of each Slurm-placed workspace, by workspace id; a step names its job by Slurm's id. */
export class SlurmJobs extends Map<string, SlurmJob> {
  byJobId(jobId: string): SlurmJob | undefined {
    for (const job of this.values()) if (job.jobId === jobId) return job;
    return undefined;
  }
}
