// The programs bench (b) relaunches: each exits 1 like /bin/false and appends two
// CLOCK_MONOTONIC stamps (ns) to the file named by its argument, its first and its last. Built
// at bench time, static, so that no dynamic loader runs between the exec and the first stamp.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * s30's program: its first stamp is its first instructions (`_start`, before any C library, the
 * clock read by the system call itself), so "next exec" ends where the kernel's exec ends. Its
 * last stamp is its last act before `exit_group` (no C library teardown either). x86-64 only.
 */
const FIRST_INSTRUCTION_SOURCE = `
static long sys(long n, long a, long b, long c) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return r;
}
/* clock_gettime(CLOCK_MONOTONIC) below the stack pointer, read into registers before the call. */
__asm__(".text\\n.globl _start\\n_start:\\n"
        "  mov $228, %eax\\n  mov $1, %edi\\n  lea -64(%rsp), %rsi\\n  syscall\\n"
        "  mov -64(%rsp), %rsi\\n  mov -56(%rsp), %rdx\\n  mov %rsp, %rdi\\n"
        "  and $-16, %rsp\\n  call after_first_stamp\\n  hlt\\n");
__attribute__((used, noreturn)) void after_first_stamp(long *sp, long sec, long nsec) {
  long s[2], t[2];
  s[0] = sec * 1000000000L + nsec;
  char **argv = (char **)(sp + 1);
  long fd = sp[0] > 1 ? sys(2 /* open */, (long)argv[1], 01 | 02000 | 02000000 /* O_WRONLY|O_APPEND|O_CLOEXEC */, 0) : -1;
  sys(228, 1, (long)t, 0);
  s[1] = t[0] * 1000000000L + t[1];
  if (fd >= 0) sys(1 /* write */, fd, (long)s, sizeof s);
  for (;;) sys(231 /* exit_group */, 1, 0, 0);
}
`;

/** s29's program, kept as it was: its first stamp is `main`'s first act (after the static C library's start-up), its last before `_exit`. */
const LIBC_MAIN_SOURCE = `
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
static long long stamp(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}
int main(int argc, char **argv) {
  long long s[2];
  s[0] = stamp();
  int fd = argc > 1 ? open(argv[1], O_WRONLY | O_APPEND | O_CLOEXEC) : -1;
  s[1] = stamp();
  if (fd >= 0) (void)!write(fd, s, sizeof s);
  _exit(1);
}
`;

export interface StampingProgram {
  file: string;
  /** Where the runs of one timeline append their stamps (emptied by `fresh`). */
  stamps: string;
  fresh(): void;
  /** Each run's [first, last] stamps in performance.now()'s ms, in run order. */
  read(): Array<[number, number]>;
}

export interface StampingPrograms {
  /** Stamps at `_start` (s30): "exit told → next exec" ends at its first stamp. */
  firstInstruction: StampingProgram;
  /** Stamps in `main` (s29): the s29 measure, last stamp → next run's first. */
  libcMain: StampingProgram;
  remove(): void;
}

/** performance.now() at CLOCK_MONOTONIC 0 (process.hrtime's clock, the addon's and the programs' stamps'). */
export const monotonicToNow = (): number => performance.now() - Number(process.hrtime.bigint()) / 1e6;

function build(dir: string, name: string, source: string, flags: string[]): StampingProgram {
  const file = path.join(dir, name);
  const stamps = path.join(dir, `${name}.stamps`);
  writeFileSync(`${file}.c`, source);
  execFileSync('gcc', ['-O2', '-static', ...flags, '-o', file, `${file}.c`]);
  writeFileSync(stamps, '');
  return {
    file,
    stamps,
    fresh: () => truncateSync(stamps, 0),
    read: () => {
      const offset = monotonicToNow();
      const bytes = readFileSync(stamps);
      const runs: Array<[number, number]> = [];
      for (let at = 0; at + 16 <= bytes.length; at += 16) {
        runs.push([Number(bytes.readBigInt64LE(at)) / 1e6 + offset, Number(bytes.readBigInt64LE(at + 8)) / 1e6 + offset]);
      }
      return runs;
    },
  };
}

export function compileStampingPrograms(): StampingPrograms {
  if (process.arch !== 'x64') throw new Error(`bench (b)'s first-instruction program is x86-64 assembly; this is ${process.arch}`);
  const dir = mkdtempSync(path.join(tmpdir(), 'shuma-bench-restart-'));
  return {
    firstInstruction: build(dir, 'stamping-false-start', FIRST_INSTRUCTION_SOURCE, ['-nostdlib', '-fno-stack-protector', '-fno-asynchronous-unwind-tables']),
    libcMain: build(dir, 'stamping-false-main', LIBC_MAIN_SOURCE, []),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
