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

/* The child of clone(CLONE_VM|CLONE_VFORK): it runs on the parent's memory while the parent
 * thread waits, so only async-signal-safe system calls are made here — no malloc, no stdio,
 * no locks — and every failure is written into the shared `struct launch` before _exit. */

__attribute__((noreturn)) static void fail(struct launch *l, int step, int index) {
  l->err = errno ? errno : EIO;
  l->step = step;
  l->index = index;
  _exit(127);
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
  if (syscall(SYS_sched_getattr, 0, &attr, sizeof attr, 0) < 0) return;
  attr.size = sizeof attr;
  attr.flags = 0;
  attr.runtime = 0;
  (void)syscall(SYS_sched_setattr, 0, &attr, 0);
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
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ~0ULL;
  size_t len = 0;
  ssize_t n;
  while (len < sizeof text - 1 && (n = read(fd, text + len, sizeof text - 1 - len)) > 0) len += (size_t)n;
  close(fd);
  text[len] = '\0';
  unsigned long long ignored, caught;
  if (!status_mask(text, "SigIgn:", &ignored) || !status_mask(text, "SigCgt:", &caught)) return ~0ULL;
  return ignored | caught;
}

int launch_child(void *arg) {
  struct launch *l = arg;
  launch_cpu_restore_in_child(&l->cpu);

  /* Node ignores SIGPIPE and installs handlers; an exec'd program must start with the
   * defaults (`yes | head -1` ends by SIGPIPE). Handlers reset before the mask opens, so
   * none of the parent's handlers can run here on the shared memory. Only the few that are
   * not the default already: a system call costs several microseconds here, and one per
   * signal (62) was a quarter of a /bin/true's whole start. */
  unsigned long long reset = signals_not_default();
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < _NSIG && sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP || !(reset & (1ULL << (sig - 1)))) continue;
    (void)sigaction(sig, &dfl, NULL); /* glibc's internal signals refuse: EINVAL is fine */
  }
  sigset_t none;
  sigemptyset(&none);
  (void)sigprocmask(SIG_SETMASK, &none, NULL);

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
    if (setsid() < 0) fail(l, STEP_SESSION, 0);
  } else {
    if (setpgid(0, 0) < 0) fail(l, STEP_GROUP, 0);
    int tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (tty >= 0) {
      (void)ioctl(tty, TIOCNOTTY);
      close(tty);
    }
  }

  /* Kept across exec (not across a set-uid one), cleared in the program's own children. */
  if (l->die_with_parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) fail(l, STEP_PDEATHSIG, 0);
    /* The runtime died before the request: the signal will never come, so go now. */
    if (getppid() != l->parent) _exit(127);
  }

  /* A source descriptor may itself be 0, 1 or 2: lift all three above 2 first, so that no
   * dup2 overwrites a source another one still needs (nor dup2(1, 1) leaves FD_CLOEXEC on,
   * which dup2 otherwise clears on 0-2). Sources above 2 (pipes, /dev/null: the usual) need no lift. */
  int lifted[3];
  bool lift = l->stdio[0] <= 2 || l->stdio[1] <= 2 || l->stdio[2] <= 2;
  for (int i = 0; i < 3; i++) {
    lifted[i] = lift ? fcntl(l->stdio[i], F_DUPFD_CLOEXEC, 3) : l->stdio[i];
    if (lifted[i] < 0) fail(l, STEP_STDIO, i);
  }
  for (int i = 0; i < 3; i++) {
    if (dup2(lifted[i], i) < 0) fail(l, STEP_STDIO, i);
  }
  /* Nothing but 0, 1 and 2 reaches the program, whatever the runtime had open. */
  if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0) fail(l, STEP_CLOSE_FDS, 0);

  if (chdir(l->cwd) < 0) fail(l, STEP_CHDIR, 0);

  /* The cgroup before the limits: joining needs a descriptor, which RLIMIT_NOFILE may forbid. */
  if (l->ncgroups > 0) {
    char pid[24];
    int len = format_pid(pid, (long)syscall(SYS_getpid));
    for (int i = 0; i < l->ncgroups; i++) {
      int fd = open(l->cgroup_procs[i], O_WRONLY | O_CLOEXEC);
      if (fd < 0) fail(l, STEP_CGROUP, i);
      errno = 0; /* a short write sets none: EIO then */
      if (write(fd, pid, (size_t)len) != len) fail(l, STEP_CGROUP, i);
      close(fd);
    }
  }

  for (int i = 0; i < l->nlimits; i++) {
    struct rlimit lim = {l->limit_value[i], l->limit_value[i]};
    if (setrlimit(l->limit_resource[i], &lim) < 0) fail(l, STEP_RLIMIT, i);
  }

  if (l->default_slice) default_slice();
  execve(l->file, l->argv, l->envp);
  fail(l, STEP_EXEC, 0);
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
