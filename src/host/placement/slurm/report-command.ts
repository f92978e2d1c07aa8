import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The command salloc runs once the allocation is granted (allocation.ts): it writes
// "shuma-allocation <job id> <node list>" to stderr from the environment salloc gives it, then
// SIGKILLs salloc, so that salloc never relinquishes the job. Every create waits for its exec:
// native/salloc-report.c, built without libc by node-gyp beside the addon, execs in 0.16 ms
// where dash with printf took 0.97 ms (medians of 400 here). Without the build (node-gyp failed),
// the same line from dash.

export const REPORT = 'shuma-allocation';

export const HELPER_PATH = fileURLToPath(new URL('../../../../../build/Release/shuma_salloc_report', import.meta.url));

const BY_SHELL = ['/bin/sh', '-c', `printf '${REPORT} %s %s\\n' "$SLURM_JOB_ID" "$SLURM_JOB_NODELIST" >&2; kill -KILL "$PPID"`];

let chosen: readonly string[] | null = null;

/** salloc's command line: the built helper, or the shell line when it was not built. */
export function reportCommand(): readonly string[] {
  chosen ??= reportCommandOf(HELPER_PATH);
  return chosen;
}

/** `helper` when it is an executable file; the shell line otherwise. */
export function reportCommandOf(helper: string | null): readonly string[] {
  if (helper === null) return BY_SHELL;
  try {
    accessSync(helper, constants.X_OK);
    return [helper];
  } catch {
    return BY_SHELL;
  }
}
