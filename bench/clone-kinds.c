/* Two ways for a spawner thread to clone /bin/true, side by side, shaped like the addon's spawn
 * path (native/addon.c, spawn-thread.c) but without any runtime around it. A "loop" thread asks a
 * "spawner" thread for each spawn and waits for the child's exit on an epoll set (its pidfd):
 *   vfork: clone(CLONE_VM|CLONE_VFORK): the spawner sleeps until the exec, then tells the loop
 *          (an eventfd, as uv_async_send does);
 *   pipe:  clone(CLONE_VM) on a stack of the loop's: the spawner goes back to waiting at once, and
 *          the loop learns of the exec itself, from a close-on-exec pipe's hang-up in its epoll set.
 * Kinds alternate round by round; the median of each is printed.
 * Build: gcc -O2 -pthread -o clone-kinds clone-kinds.c; run: ./clone-kinds <runs> <in flight> <rounds> */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STACK (64 * 1024)
#define MAXF 64

static char *ARGV[] = {"/bin/true", NULL};
extern char **environ;

struct job {
  int vfork;
  int w;          /* pipe: the write end the child keeps until its exec */
  void *stack;
  pid_t pid;
  int pidfd;
  struct job *next;
};

static int child(void *arg) {
  struct job *j = arg;
  uint64_t none = 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
  syscall(SYS_setsid);
  if (!j->vfork) {
    /* keep only w above 2 (close-on-exec) */
    if (j->w > 3) syscall(SYS_close_range, 3U, (unsigned)j->w - 1, 0U);
    syscall(SYS_close_range, (unsigned)j->w + 1, ~0U, 0U);
  } else {
    syscall(SYS_close_range, 3U, ~0U, 0U);
  }
  syscall(SYS_execve, ARGV[0], ARGV, environ);
  syscall(SYS_exit_group, 127);
  return 0;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct job *todo;
static int done_fd; /* eventfd: the vfork kind's "done" */
static struct job *done_list;

static void *spawner(void *arg) {
  (void)arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, NULL);
  for (;;) {
    pthread_mutex_lock(&lock);
    while (!todo) pthread_cond_wait(&wake, &lock);
    struct job *j = todo;
    todo = j->next;
    pthread_mutex_unlock(&lock);
    int pidfd = -1;
    pid_t pid = clone(child, (char *)j->stack + STACK, CLONE_VM | (j->vfork ? CLONE_VFORK : 0) | CLONE_PIDFD | SIGCHLD, j, &pidfd);
    if (pid < 0) abort();
    j->pid = pid;
    j->pidfd = pidfd;
    if (j->vfork) {
      pthread_mutex_lock(&lock);
      j->next = done_list;
      done_list = j;
      pthread_mutex_unlock(&lock);
      uint64_t one = 1;
      (void)write(done_fd, &one, 8);
    } else {
      __atomic_thread_fence(__ATOMIC_RELEASE);
      close(j->w); /* after this the job is the loop's */
    }
  }
  return NULL;
}

static void submit(struct job *j) {
  pthread_mutex_lock(&lock);
  j->next = todo;
  todo = j;
  pthread_mutex_unlock(&lock);
  pthread_cond_signal(&wake);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Tags in epoll data: the low bits tell what a ready descriptor is. */
enum { TAG_DONE = 1, TAG_EXEC = 2, TAG_EXIT = 3 };
struct slot {
  struct job job;
  int r; /* pipe read end */
  int tag_exec, tag_exit;
};

static int ep;

static void start(struct slot *s, int vfork) {
  struct job *j = &s->job;
  j->vfork = vfork;
  if (!vfork) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) abort();
    s->r = p[0];
    j->w = p[1];
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = (char *)s + TAG_EXEC};
    epoll_ctl(ep, EPOLL_CTL_ADD, s->r, &ev);
  }
  submit(j);
}

static void watch_exit(struct slot *s) {
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = (char *)s + TAG_EXIT};
  epoll_ctl(ep, EPOLL_CTL_ADD, s->job.pidfd, &ev);
}

static double round_rate(struct slot *slots, int n, int inflight, int vfork) {
  int started = 0, finished = 0;
  double t0 = now_ms();
  for (int i = 0; i < inflight && started < n; i++, started++) start(&slots[i], vfork);
  struct epoll_event evs[MAXF * 2];
  while (finished < n) {
    int k = epoll_wait(ep, evs, MAXF * 2, -1);
    for (int i = 0; i < k; i++) {
      uintptr_t p = (uintptr_t)evs[i].data.ptr;
      int tag = (int)(p & 3);
      if (tag == TAG_DONE) {
        uint64_t v;
        (void)read(done_fd, &v, 8);
        pthread_mutex_lock(&lock);
        struct job *d = done_list;
        done_list = NULL;
        pthread_mutex_unlock(&lock);
        for (; d; d = d->next) watch_exit((struct slot *)d);
      } else if (tag == TAG_EXEC) {
        struct slot *s = (struct slot *)(p & ~(uintptr_t)3);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        epoll_ctl(ep, EPOLL_CTL_DEL, s->r, NULL);
        close(s->r);
        watch_exit(s);
      } else {
        struct slot *s = (struct slot *)(p & ~(uintptr_t)3);
        epoll_ctl(ep, EPOLL_CTL_DEL, s->job.pidfd, NULL);
        siginfo_t info;
        waitid(P_PIDFD, (id_t)s->job.pidfd, &info, WEXITED);
        close(s->job.pidfd);
        finished++;
        if (started < n) {
          start(s, vfork);
          started++;
        }
      }
    }
  }
  return n * 1000.0 / (now_ms() - t0);
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 2000;
  int inflight = argc > 2 ? atoi(argv[2]) : 1;
  int rounds = argc > 3 ? atoi(argv[3]) : 5;
  if (inflight > MAXF) inflight = MAXF;
  ep = epoll_create1(EPOLL_CLOEXEC);
  done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = (void *)(uintptr_t)TAG_DONE};
  epoll_ctl(ep, EPOLL_CTL_ADD, done_fd, &ev);
  static struct slot slots[MAXF];
  for (int i = 0; i < MAXF; i++) {
    slots[i].job.stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    memset(slots[i].job.stack, 0, STACK);
  }
  pthread_t t;
  pthread_create(&t, NULL, spawner, NULL);
  round_rate(slots, 200, inflight, 1);
  round_rate(slots, 200, inflight, 0);
  double v[64], p[64];
  for (int r = 0; r < rounds && r < 64; r++) {
    v[r] = round_rate(slots, n, inflight, 1);
    p[r] = round_rate(slots, n, inflight, 0);
  }
  for (int r = 0; r < rounds; r++) printf("round %d: vfork %.0f/s  pipe %.0f/s  ratio %.3f\n", r, v[r], p[r], p[r] / v[r]);
  qsort(v, rounds, sizeof *v, cmp);
  qsort(p, rounds, sizeof *p, cmp);
  printf("in flight %d, %d runs x %d rounds: vfork median %.0f/s (%.0f-%.0f)  pipe median %.0f/s (%.0f-%.0f)  ratio %.3f\n", inflight, n,
         rounds, v[rounds / 2], v[0], v[rounds - 1], p[rounds / 2], p[0], p[rounds - 1], p[rounds / 2] / v[rounds / 2]);
  return 0;
}
