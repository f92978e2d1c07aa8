import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cleanUpIfKilled } from './watchdog.js';

// One throwaway Slurm cluster per test file (scripts/slurm-test-cluster.sh), gone when the file
// ends. In CI (CI=true) Slurm must be there; elsewhere its absence skips the Slurm tests, saying so.

const run = promisify(execFile);
const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/slurm-test-cluster.sh');
const DAEMONS = ['/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/sbin/munged', '/usr/bin/srun', '/usr/bin/salloc'];

export const SLURM_SKIP_REASON =
  'Slurm is not installed here, so the Slurm tests were skipped. To run them: ' +
  'apt-get install slurmctld slurmd slurm-client munge, then npm test (they start their own throwaway cluster)';

/** False (and a skip reason) when this machine has no Slurm; in CI a missing Slurm is an error. */
export function slurmSkip(): string | false {
  const missing = DAEMONS.filter((file) => !existsSync(file));
  if (missing.length === 0) return false;
  if (process.env.CI === 'true') throw new Error(`CI: Slurm must be installed for its tests (missing ${missing.join(', ')}); .ci/run installs it`);
  process.stderr.write(`\n*** ${SLURM_SKIP_REASON} ***\n\n`);
  return SLURM_SKIP_REASON;
}

export interface TestCluster {
  root: string;
  conf: string;
  pidOf(daemon: 'slurmctld' | 'slurmd-n1' | 'slurmd-n2' | 'munged'): Promise<number>;
  down(): Promise<void>;
}

export async function clusterUp(): Promise<TestCluster> {
  // The root is made here, so that the watchdog knows it before the first daemon starts: the
  // daemons detach (they are nobody's children), and a test process killed meanwhile, or before
  // its after(), would leave them running for good.
  const root = mkdtempSync('/tmp/shuma-slurm.');
  const forget = cleanUpIfKilled({ run: [SCRIPT, 'down', root] });
  const { stdout } = await run(SCRIPT, ['up', root], { timeout: 60_000 });
  const conf = /SLURM_CONF=(\S+)/.exec(stdout)?.[1];
  if (!conf) throw new Error(`slurm-test-cluster.sh up printed no SLURM_CONF: ${stdout}`);
  let down: Promise<void> | null = null;
  return {
    root,
    conf,
    async pidOf(daemon) {
      const { readFile } = await import('node:fs/promises');
      return Number((await readFile(path.join(root, 'run', `${daemon}.pid`), 'utf8')).trim());
    },
    down() {
      down ??= run(SCRIPT, ['down', root], { timeout: 60_000 }).then(() => forget());
      return down;
    },
  };
}

export { SCRIPT as CLUSTER_SCRIPT };
