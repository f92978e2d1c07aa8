#ifndef SHUMA_CHILD_SYSCALL_H
#define SHUMA_CHILD_SYSCALL_H

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

/* System calls for a child cloned with CLONE_VM (launch-child.c): the result, or -errno.
 *
 * Such a child runs on the runtime's memory with the thread pointer of the thread that cloned
 * it, so libc's `errno` in it *is* that thread's errno. While that thread is suspended
 * (CLONE_VFORK) nobody minds; when it goes on at once (CHILD_RUNS_BESIDE_PARENT, addon.c), every
 * failed call of libc's in the child — and some fail on every spawn (an open of /dev/tty, a
 * sigaction of glibc's own signals) — would write the thread's errno under it. These stubs write
 * no memory at all, as musl's posix_spawn child uses its __syscall. Elsewhere libc's, and the
 * child keeps CLONE_VFORK. */

#if defined(__x86_64__)
#define CHILD_RUNS_BESIDE_PARENT 1
static inline long child_syscall(long n, long a, long b, long c, long d) {
  register long r10 __asm__("r10") = d;
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return r;
}
#elif defined(__aarch64__)
#define CHILD_RUNS_BESIDE_PARENT 1
static inline long child_syscall(long n, long a, long b, long c, long d) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
  return x0;
}
#else
#define CHILD_RUNS_BESIDE_PARENT 0
static inline long child_syscall(long n, long a, long b, long c, long d) {
  long r = syscall(n, a, b, c, d);
  return r < 0 ? -(long)errno : r;
}
#endif

#define CSYS0(n) child_syscall((n), 0, 0, 0, 0)
#define CSYS1(n, a) child_syscall((n), (long)(a), 0, 0, 0)
#define CSYS2(n, a, b) child_syscall((n), (long)(a), (long)(b), 0, 0)
#define CSYS3(n, a, b, c) child_syscall((n), (long)(a), (long)(b), (long)(c), 0)
#define CSYS4(n, a, b, c, d) child_syscall((n), (long)(a), (long)(b), (long)(c), (long)(d))

#endif
