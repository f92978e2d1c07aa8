// The floor to compare against: C posix_spawn of /bin/true + waitpid, one at a time (or k in
// flight, each exit replaced by the next spawn), in a small process of its own — what spawning
// costs without any runtime around it. Run for a count, or for a time (rateFor).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const SOURCE = `
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
extern char **environ;
static double since(const struct timespec *a) {
  struct timespec b;
  clock_gettime(CLOCK_MONOTONIC, &b);
  return (b.tv_sec - a->tv_sec) * 1e3 + (b.tv_nsec - a->tv_nsec) / 1e6;
}
/* argv: count, in flight, and a budget in ms: past it, no new spawn starts (0: none). */
int main(int argc, char **argv) {
  int n = atoi(argv[1]);
  int inflight = argc > 2 ? atoi(argv[2]) : 1;
  double budget = argc > 3 ? atof(argv[3]) : 0;
  char *args[] = {"/bin/true", NULL};
  struct timespec a;
  int started = 0, running = 0, done = 0;
  clock_gettime(CLOCK_MONOTONIC, &a);
  while (done < n) {
    if (budget > 0 && started < n && since(&a) >= budget) n = started;
    if (running == 0 && started == n) break;
    while (running < inflight && started < n) {
      pid_t pid;
      if (posix_spawn(&pid, "/bin/true", NULL, NULL, args, environ) != 0) return 1;
      started++;
      running++;
    }
    int status;
    if (waitpid(-1, &status, 0) <= 0) return 1;
    running--;
    done++;
  }
  printf("%d %f\\n", done, since(&a));
  return 0;
}
`;

export interface CSpawnLoop {
  /** Spawns per second over `count` spawn+wait rounds, `inflight` at a time (default 1). */
  rate(count: number, inflight?: number): number;
  /**
   * The same over about `budgetMs`: as long as the runs it is compared with, so that on a
   * shared machine both meet the same load.
   */
  rateFor(budgetMs: number, inflight?: number): number;
  remove(): void;
}

/** Compiles the loop with gcc -O2 into a temporary directory. */
export function compileCSpawnLoop(): CSpawnLoop {
  const dir = mkdtempSync(path.join(tmpdir(), 'shuma-bench-c-'));
  const source = path.join(dir, 'spawn-loop.c');
  const binary = path.join(dir, 'spawn-loop');
  writeFileSync(source, SOURCE);
  execFileSync('gcc', ['-O2', '-o', binary, source]);
  const run = (args: string[]) => {
    const [done, ms] = execFileSync(binary, args, { encoding: 'utf8' }).trim().split(' ').map(Number);
    return (done! * 1000) / ms!;
  };
  return {
    rate: (count, inflight = 1) => run([String(count), String(inflight)]),
    rateFor: (budgetMs, inflight = 1) => run(['1000000000', String(inflight), String(budgetMs)]),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
