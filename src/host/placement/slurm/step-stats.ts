import { runSlurm, type SlurmCluster } from './slurm-cli.js';

// A Slurm-placed workspace's stats come from its steps, as the job accounting gatherer on each
// node samples them (`sstat`, which needs no accounting database).

export interface StepSample {
  stepId: string;
  rssBytes: number | null;
  cpuUsec: number | null;
}

export async function sampleSteps(cluster: SlurmCluster, jobId: string): Promise<StepSample[]> {
  const answer = await runSlurm(cluster, 'sstat', ['--allsteps', '--noheader', '--parsable2', `--jobs=${jobId}`, '--format=JobID,AveRSS,TRESUsageInTot']);
  if (answer.code !== 0) return [];
  const samples: StepSample[] = [];
  for (const line of answer.stdout.split('\n')) {
    const [stepId, aveRss, tres] = line.trim().split('|');
    if (!stepId || stepId.endsWith('.extern') || stepId.endsWith('.batch')) continue;
    const cpu = /(?:^|,)cpu=([^,]+)/.exec(tres ?? '')?.[1];
    samples.push({ stepId, rssBytes: parseSize(aveRss ?? ''), cpuUsec: cpu === undefined ? null : parseDuration(cpu) });
  }
  return samples;
}

/** sstat's sizes: 6864K, 1.50M, 2G, or bytes. */
export function parseSize(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)([KMGTP]?)$/.exec(text.trim());
  if (!m) return null;
  const power = ' KMGTP'.indexOf(m[2] || ' ');
  return Math.round(Number(m[1]) * 1024 ** power);
}

/** Slurm's durations: [D-][HH:]MM:SS[.mmm], in microseconds. */
export function parseDuration(text: string): number | null {
  const m = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$/.exec(text.trim());
  if (!m) return null;
  const seconds = Number(m[1] ?? 0) * 86_400 + Number(m[2] ?? 0) * 3600 + Number(m[3]) * 60 + Number(m[4]);
  return Math.round(seconds * 1e6);
}
