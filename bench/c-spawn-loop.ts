// The floor to compare against: C posix_spawn of /bin/true + waitpid, one at a time (or k in
// flight, each exit replaced by the next spawn), in a small process of its own — what spawning
// costs without any runtime around it.
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
int main(int argc, char **argv) {
  int n = atoi(argv[1]);
  int inflight = argc > 2 ? atoi(argv[2]) : 1;
  char *args[] = {"/bin/true", NULL};
  struct timespec a, b;
  int started = 0, running = 0, done = 0;
  clock_gettime(CLOCK_MONOTONIC, &a);
  while (done < n) {
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
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%f\\n", (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
  return 0;
}
`;

export interface CSpawnLoop {
  /** Spawns per second over `count` spawn+wait rounds, `inflight` at a time (default 1). */
  rate(count: number, inflight?: number): number;
  remove(): void;
}

/** Compiles the loop with gcc -O2 into a temporary directory. */
export function compileCSpawnLoop(): CSpawnLoop {
  const dir = mkdtempSync(path.join(tmpdir(), 'shuma-bench-c-'));
  const source = path.join(dir, 'spawn-loop.c');
  const binary = path.join(dir, 'spawn-loop');
  writeFileSync(source, SOURCE);
  execFileSync('gcc', ['-O2', '-o', binary, source]);
  return {
    rate(count, inflight = 1) {
      const ms = Number(execFileSync(binary, [String(count), String(inflight)], { encoding: 'utf8' }).trim());
      return (count * 1000) / ms;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
