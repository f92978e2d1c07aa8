#define _GNU_SOURCE
#include "launch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child-syscall.h"

/* The child of clone(CLONE_VM): it runs on the parent's memory — while the parent thread waits
 * (CLONE_VFORK), or beside it (spawnAsync, addon.c) — so it makes system calls only, through
 * child-syscall.h's stubs, which leave the thread's errno alone: no malloc, no stdio, no locks,
 * no libc wrapper. Every failure is written into the shared `struct launch` before the exit. */

__attribute__((noreturn)) static void exit_now(void) {
  for (;;) CSYS1(SYS_exit_group, 127);
}

__attribute__((noreturn)) static void fail(struct launch *l, long rc, int step, int index) {
  l->err = rc < 0 ? (int)-rc : EIO;
  l->step = step;
  l->index = index;
  exit_now();
}

/* Decimal digits of `n` into `buf`, for cgroup.procs; returns the length. */
static int format_pid(char *buf, long n) {
  char tmp[24];
  int len = 0;
  do {
    tmp[len++] = (char)('0' + n % 10);
    n /= 10;
  } while (n > 0);
  for (int i = 0; i < len; i++) buf[i] = tmp[len - 1 - i];
  buf[len] = '\n';
  return len + 1;
}

/* struct sched_attr (SCHED_ATTR_SIZE_VER0); glibc before 2.41 has no wrapper. */
struct child_sched_attr {
  unsigned int size, policy;
  unsigned long long flags;
  int nice;
  unsigned int priority;
  unsigned long long runtime, deadline, period;
};

/* The program starts with the kernel's default slice: the short one of the thread that cloned
 * us (spawn-thread.c) served our prologue only. Policy and nice stay as they are. */
static void default_slice(void) {
  struct child_sched_attr attr;
  memset(&attr, 0, sizeof attr);
  if (CSYS4(SYS_sched_getattr, 0, &attr, sizeof attr, 0) < 0) return;
  attr.size = sizeof attr;
  attr.flags = 0;
  attr.runtime = 0;
  (void)CSYS3(SYS_sched_setattr, 0, &attr, 0);
}

/* The hexadecimal mask after `key` in /proc's status text; 0 when it is not there. */
static int status_mask(const char *text, const char *key, unsigned long long *mask) {
  size_t key_len = strlen(key);
  for (const char *line = text; *line; line++) {
    if (line != text && line[-1] != '\n') continue;
    if (strncmp(line, key, key_len) != 0) continue;
    const char *p = line + key_len;
    while (*p == ' ' || *p == '\t') p++;
    unsigned long long value = 0;
    int digits = 0;
    for (;; p++, digits++) {
      int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
      if (d < 0) break;
      value = value << 4 | (unsigned long long)d;
    }
    if (digits == 0) return 0;
    *mask = value;
    return 1;
  }
  return 0;
}

/* The signals whose disposition is not the default here (ignored or caught: SigIgn | SigCgt),
 * as the kernel lists them for this child: its own copy of the runtime's table, made by the
 * clone, so nobody can change it meanwhile. Every signal when /proc cannot say. */
static unsigned long long signals_not_default(void) {
  char text[4096];
  int fd = (int)CSYS4(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return ~0ULL;
  size_t len = 0;
  long n;
  while (len < sizeof text - 1 && (n = CSYS3(SYS_read, fd, text + len, sizeof text - 1 - len)) > 0) len += (size_t)n;
  CSYS1(SYS_close, fd);
  text[len] = '\0';
  unsigned long long ignored, caught;
  if (!status_mask(text, "SigIgn:", &ignored) || !status_mask(text, "SigCgt:", &caught)) return ~0ULL;
  return ignored | caught;
}

/* The kernel's struct sigaction (x86-64 and arm64 alike; sa_restorer unused for SIG_DFL). */
struct child_sigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)(void);
  unsigned long long mask;
};

/* Every descriptor above 2 is closed but `keep` (> 2; else none), the pipe that tells the exec. */
static long close_all_but(int keep) {
  if (keep <= 2) return CSYS3(SYS_close_range, 3U, ~0U, 0U);
  long rc = keep > 3 ? CSYS3(SYS_close_range, 3U, (unsigned)keep - 1, 0U) : 0;
  return rc < 0 ? rc : CSYS3(SYS_close_range, (unsigned)keep + 1, ~0U, 0U);
}

int launch_child(void *arg) {
  struct launch *l = arg;
  long rc;
  /* libc's calls, but only on the relaunch path, whose cloning thread waits (CLONE_VFORK). */
  launch_cpu_restore_in_child(&l->cpu);

  /* Node ignores SIGPIPE and installs handlers; an exec'd program must start with the
   * defaults (`yes | head -1` ends by SIGPIPE). Handlers reset before the mask opens, so
   * none of the parent's handlers can run here on the shared memory. Only the few that are
   * not the default already: a system call costs several microseconds here, and one per
   * signal (62) was a quarter of a /bin/true's whole start. */
  unsigned long long reset = signals_not_default();
  struct child_sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.handler = SIG_DFL;
  for (int sig = 1; sig < _NSIG && sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP || !(reset & (1ULL << (sig - 1)))) continue;
    /* glibc's own signals too (its wrapper refused them): this child's table is its own copy. */
    (void)CSYS4(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
  }
  unsigned long long none = 0;
  (void)CSYS4(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none);

  /* A process group of its own either way, so that a stop reaches every descendant (kill(-pid)).
   * A session is also a scheduling autogroup (one per session), and which one pays depends on
   * who the child must hand the CPU to (docs/architecture.md § Processes):
   * - a command alone leads a session of its own: in the runtime's group, a freshly exec'd
   *   program (its loader's first milliseconds) ran before the runtime's own threads, which had
   *   just woken to tell its start — a restart's "exit told → next exec" and the actor's round
   *   trip waited behind it (bench (b));
   * - a pipeline's stages (and salloc) stay in the runtime's session: stages in groups of their
   *   own hand the CPU over badly under load (bench (j): a session per stage costs bash itself
   *   2x its CPU, and shuma's pipelines collapsed to 0.1x of bash). What the session would have
   *   kept away, the terminal, is let go of: a program that opens /dev/tty gets ENXIO, as a
   *   session leader without one would. */
  if (l->own_session) {
    if ((rc = CSYS0(SYS_setsid)) < 0) fail(l, rc, STEP_SESSION, 0);
  } else {
    if ((rc = CSYS2(SYS_setpgid, 0, 0)) < 0) fail(l, rc, STEP_GROUP, 0);
    int tty = (int)CSYS4(SYS_openat, AT_FDCWD, "/dev/tty", O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0);
    if (tty >= 0) {
      (void)CSYS3(SYS_ioctl, tty, TIOCNOTTY, 0);
      CSYS1(SYS_close, tty);
    }
  }

  /* Kept across exec (not across a set-uid one), cleared in the program's own children. */
  if (l->die_with_parent) {
    if ((rc = CSYS2(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL)) < 0) fail(l, rc, STEP_PDEATHSIG, 0);
    /* The runtime died before the request: the signal will never come, so go now. */
    if (CSYS0(SYS_getppid) != l->parent) exit_now();
  }

  /* A source descriptor may itself be 0, 1 or 2: lift all three above 2 first, so that no
   * dup2 overwrites a source another one still needs (nor dup2(1, 1) leaves FD_CLOEXEC on,
   * which dup2 otherwise clears on 0-2). Sources above 2 (pipes, /dev/null: the usual) need no lift. */
  int lifted[3];
  bool lift = l->stdio[0] <= 2 || l->stdio[1] <= 2 || l->stdio[2] <= 2;
  for (int i = 0; i < 3; i++) {
    rc = lift ? CSYS3(SYS_fcntl, l->stdio[i], F_DUPFD_CLOEXEC, 3) : l->stdio[i];
    if (rc < 0) fail(l, rc, STEP_STDIO, i);
    lifted[i] = (int)rc;
  }
  /* dup3, not dup2 (none on arm64): a source is never its target here, it is > 2 by now. */
  for (int i = 0; i < 3; i++) {
    if ((rc = CSYS3(SYS_dup3, lifted[i], i, 0)) < 0) fail(l, rc, STEP_STDIO, i);
  }
  /* Nothing but 0, 1 and 2 reaches the program, whatever the runtime had open (the exec pipe
   * is close-on-exec). Before any step that can block (a chdir on a hung mount, a cgroup write):
   * until here the child holds the exec pipes of spawns queued beside it, whose hang-ups would
   * wait for it (native-spawner.test.ts, "a child slow to reach its exec"). */
  if ((rc = close_all_but(l->exec_pipe)) < 0) fail(l, rc, STEP_CLOSE_FDS, 0);

  if ((rc = CSYS1(SYS_chdir, l->cwd)) < 0) fail(l, rc, STEP_CHDIR, 0);

  /* The cgroup before the limits: joining needs a descriptor, which RLIMIT_NOFILE may forbid. */
  if (l->ncgroups > 0) {
    char pid[24];
    int len = format_pid(pid, CSYS0(SYS_getpid));
    for (int i = 0; i < l->ncgroups; i++) {
      long fd = CSYS4(SYS_openat, AT_FDCWD, l->cgroup_procs[i], O_WRONLY | O_CLOEXEC, 0);
      if (fd < 0) fail(l, fd, STEP_CGROUP, i);
      /* a short write (rc >= 0) is told as EIO */
      if ((rc = CSYS3(SYS_write, fd, pid, len)) != len) fail(l, rc, STEP_CGROUP, i);
      CSYS1(SYS_close, fd);
    }
  }

  for (int i = 0; i < l->nlimits; i++) {
    struct rlimit lim = {l->limit_value[i], l->limit_value[i]};
    if ((rc = CSYS4(SYS_prlimit64, 0, l->limit_resource[i], &lim, NULL)) < 0) fail(l, rc, STEP_RLIMIT, i);
  }

  if (l->default_slice) default_slice();
  rc = CSYS3(SYS_execve, l->file, l->argv, l->envp);
  fail(l, rc, STEP_EXEC, 0);
}

const char *launch_step_name(int step) {
  switch (step) {
    case STEP_GROUP: return "setpgid";
    case STEP_SESSION: return "setsid";
    case STEP_PDEATHSIG: return "prctl";
    case STEP_STDIO: return "stdio";
    case STEP_CLOSE_FDS: return "close_range";
    case STEP_CHDIR: return "chdir";
    case STEP_CGROUP: return "cgroup";
    case STEP_RLIMIT: return "rlimit";
    case STEP_EXEC: return "exec";
    default: return "clone";
  }
}
