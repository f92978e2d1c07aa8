#define _GNU_SOURCE
#include "exec-watch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "exit-watch.h"
#include "watch-set.h"

/* A child cloned with CLONE_VM but without CLONE_VFORK runs on our memory while its cloning thread
 * goes on (addon.c says why). Two things must then outlive the clone until its exec:
 * - its stack: one per child in flight, from a pool kept on the loop (mapped per spawn, a stack
 *   cost page faults in every child and a TLB shootdown at each munmap);
 * - a way to learn of the exec: a close-on-exec pipe whose write end only the child holds once
 *   the cloning thread has closed its own. Nothing is ever written to it: the child reports a
 *   failure in the shared `struct launch`, as before, then exits. The read end hangs up when the
 *   exec has replaced the child's memory (begin_new_exec closes the close-on-exec descriptors
 *   after exec_mmap) or when the child has exited, so by then it touches neither our memory nor
 *   its stack. The loop sees the hang-up in its watch set (one epoll add and delete a spawn),
 *   which keeps the loop alive meanwhile. */

#define STACK_BYTES (64 * 1024)
/* Stacks kept for the next children: 16 in flight is the busy case; more are mapped and unmapped. */
#define STACKS_KEPT 32

struct exec_stacks {
  int n;
  void *free[STACKS_KEPT];
};

struct exec_watch {
  struct watch_entry entry; /* first: the set's entry is its watch */
  struct addon_state *state;
  int write_end;
  void *stack;
  void (*execd)(void *arg);
  void *arg;
};

static void *take_stack(struct addon_state *state) {
  struct exec_stacks *pool = state->exec_stacks;
  if (pool && pool->n > 0) return pool->free[--pool->n];
  void *stack = mmap(NULL, STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  return stack == MAP_FAILED ? NULL : stack;
}

static void give_stack(struct addon_state *state, void *stack) {
  struct exec_stacks *pool = state->exec_stacks;
  if (!pool) pool = state->exec_stacks = calloc(1, sizeof *pool);
  if (pool && pool->n < STACKS_KEPT) pool->free[pool->n++] = stack;
  else munmap(stack, STACK_BYTES);
}

static void on_hangup(struct watch_entry *entry, uint32_t events) {
  (void)events; /* nothing is written: readable means every write end is closed */
  struct exec_watch *w = (struct exec_watch *)entry;
  /* What the child and the cloning thread wrote before their closes. */
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  w->execd(w->arg);
}

static void free_watch(struct watch_entry *entry) {
  close(entry->fd);
  free(entry);
}

/* Above 2: the child's dup2s onto 0-2 must not overwrite it. */
static int above_stdio(int fd) {
  if (fd > 2) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int err = errno;
  close(fd);
  errno = err;
  return moved;
}

struct exec_watch *exec_watch_open(struct addon_state *state, void (*execd)(void *arg), void *arg) {
  struct exec_watch *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) goto fail;
  p[0] = above_stdio(p[0]);
  p[1] = above_stdio(p[1]);
  if (p[0] < 0 || p[1] < 0) {
    int err = errno;
    if (p[0] >= 0) close(p[0]);
    if (p[1] >= 0) close(p[1]);
    errno = err;
    goto fail;
  }
  w->entry.fd = p[0];
  w->write_end = p[1];
  w->entry.ready = on_hangup;
  w->entry.dropped = free_watch;
  w->state = state;
  w->execd = execd;
  w->arg = arg;
  int rc;
  if (!(w->stack = take_stack(state))) rc = errno ? errno : ENOMEM;
  else rc = watch_set_add(state, &w->entry);
  if (rc == 0) return w;
  if (w->stack) give_stack(state, w->stack);
  close(p[0]);
  close(p[1]);
  errno = rc;
fail:
  free(w);
  return NULL;
}

int exec_watch_write_end(const struct exec_watch *w) {
  return w->write_end;
}

void *exec_watch_stack_top(const struct exec_watch *w) {
  return (char *)w->stack + STACK_BYTES;
}

void exec_watch_let_go(struct exec_watch *w) {
  int fd = w->write_end;
  w->write_end = -1;
  __atomic_thread_fence(__ATOMIC_RELEASE);
  close(fd);
}

void exec_watch_wait(struct exec_watch *w) {
  struct pollfd p = {.fd = w->entry.fd, .events = POLLIN};
  while (poll(&p, 1, -1) < 0 && errno == EINTR) {
  }
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
}

void exec_watch_close(struct addon_state *state, struct exec_watch *w) {
  if (w->write_end >= 0) close(w->write_end); /* never cloned */
  give_stack(state, w->stack);
  watch_set_drop(state, &w->entry); /* the read end is closed once the set has let go */
}

void exec_watch_free_stacks(struct addon_state *state) {
  struct exec_stacks *pool = state->exec_stacks;
  if (!pool) return;
  while (pool->n > 0) munmap(pool->free[--pool->n], STACK_BYTES);
  free(pool);
  state->exec_stacks = NULL;
}
