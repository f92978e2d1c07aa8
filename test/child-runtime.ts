// A runtime in a child process of a test (crash-drill, die-with-runtime, consistent-cut,
// persistence, the Slurm crash tests, exit-gap), which the test SIGKILLs or lets exit: under
// orphans 'adopt' what it started lives on by design until the next runtime on its stateDir.
// Registered with the watchdog (watchdog.ts): if this test process dies first, the child runtime
// and every process carrying its stateDir's mark are killed.
import { spawn } from 'node:child_process';
import { cleanUpIfKilled, cleanUpStateDirIfKilled } from './watchdog.js';

/** `node SCRIPT ...args`, stdout piped; `release()` withdraws the clean-ups once the test has cleaned up. */
export function startChildRuntime(script: string, args: readonly string[], stateDir?: string) {
  const forgetMark = stateDir ? cleanUpStateDirIfKilled(stateDir) : () => undefined;
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const forgetChild = cleanUpIfKilled({ pid: child.pid! });
  return {
    child,
    release: () => {
      forgetChild();
      forgetMark();
    },
  };
}
