#define _GNU_SOURCE
#include "spawn-thread.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* One thread of our own does the clones, so that the loop never waits for a clone. Not libuv's
 * pool: that pool is shared with fs, dns and crypto work, and a spawn queued behind a slow
 * getaddrinfo would hold up a restart for as long.
 *
 * The thread does not tell the loop when a task has run: a task's owner learns its outcome on the
 * loop by a means of its own (addon.c: the child's exec pipe, in the loop's watch set, which also
 * keeps the loop alive meanwhile) and hands it back with spawn_thread_done. The thread only keeps
 * the list of tasks not yet done, for its stop. */

struct task_list {
  struct spawn_task *head, *tail;
};

struct spawn_thread {
  napi_env env;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  struct task_list todo;
  int stopping;
  /* Submitted and not yet done (or dropped): loop thread only. */
  struct spawn_task *out;
  napi_async_context context;
};

static void push(struct task_list *list, struct spawn_task *task) {
  task->next = NULL;
  if (list->tail) list->tail->next = task;
  else list->head = task;
  list->tail = task;
}

static struct spawn_task *take_all(struct task_list *list) {
  struct spawn_task *all = list->head;
  list->head = list->tail = NULL;
  return all;
}

static void unlink_out(struct spawn_thread *t, struct spawn_task *task) {
  if (task->prev_out) task->prev_out->next_out = task->next_out;
  else t->out = task->next_out;
  if (task->next_out) task->next_out->prev_out = task->prev_out;
  task->prev_out = task->next_out = NULL;
}

/* struct sched_attr as of Linux 3.14 (SCHED_ATTR_SIZE_VER0); glibc before 2.41 has no wrapper. */
struct thread_sched_attr {
  uint32_t size, policy;
  uint64_t flags;
  int32_t nice;
  uint32_t priority;
  uint64_t runtime, deadline, period;
};

#define POLICY_OTHER 0
#define POLICY_BATCH 3
/* The shortest request EEVDF takes (0.1 ms); the default is 0.7-3 ms by the number of CPUs. */
#define SHORT_SLICE_NS 100000

/* This thread only ever runs in short bursts (a clone, and on the relaunch
 * thread a vfork wait), and each is on a restart's path: ask the scheduler (EEVDF, Linux 6.6+: a
 * custom slice, sched_attr.sched_runtime) for a short slice, which lets it preempt on wake-up
 * instead of waiting for the task it woke next to — typically the child it just started, which
 * shares the runtime's autogroup (launch-child.c) and, new, holds the earlier deadline. Under
 * load this took the restart's "exit told → next exec" median from 1.2-1.8 ms to 0.9-1.0 ms
 * (bench (b)). The children cloned here keep it until just before their exec, where they set
 * the kernel's default back (launch-child.c: no program ever runs with it): the prologue, and
 * above all setsid (a new autogroup, whose entity takes the slice of its one task), no longer
 * waits behind every task with an earlier deadline — traced at load ~12, setsid's median went
 * from 1.47 to 0.29 ms (with SCHED_FLAG_RESET_ON_FORK, s25, the child had the default slice
 * from the clone on). Asked only for a normal policy and no negative nice, as before.
 * Kernels without custom slices ignore the request; a refusal is no error. */
__thread int spawn_thread_short_slice;

void spawn_thread_ask_for_short_slices(void) {
  struct thread_sched_attr attr;
  memset(&attr, 0, sizeof attr);
  if (syscall(SYS_sched_getattr, 0, &attr, sizeof attr, 0) < 0) return;
  if ((attr.policy != POLICY_OTHER && attr.policy != POLICY_BATCH) || attr.nice < 0) return;
  attr.size = sizeof attr;
  attr.flags = 0;
  attr.runtime = SHORT_SLICE_NS;
  if (syscall(SYS_sched_setattr, 0, &attr, 0) == 0) spawn_thread_short_slice = 1;
}

static void *main_loop(void *arg) {
  struct spawn_thread *t = arg;
  spawn_thread_ask_for_short_slices();
  pthread_mutex_lock(&t->lock);
  for (;;) {
    while (!t->todo.head && !t->stopping) pthread_cond_wait(&t->wake, &t->lock);
    if (t->stopping) break;
    struct spawn_task *task = t->todo.head;
    t->todo.head = task->next;
    if (!t->todo.head) t->todo.tail = NULL;
    pthread_mutex_unlock(&t->lock);
    task->run(task); /* the task is the loop's from here on: not touched again */
    pthread_mutex_lock(&t->lock);
  }
  pthread_mutex_unlock(&t->lock);
  return NULL;
}

void spawn_thread_done(struct spawn_thread *t, struct spawn_task *task) {
  unlink_out(t, task);
  napi_env env = t->env;
  napi_handle_scope handles;
  napi_callback_scope scope;
  napi_value resource;
  /* A callback scope, so that the promise it settles runs its reactions as after any I/O callback. */
  napi_open_handle_scope(env, &handles);
  napi_create_object(env, &resource);
  napi_open_callback_scope(env, resource, t->context, &scope);
  task->done(env, task);
  napi_close_callback_scope(env, scope);
  napi_close_handle_scope(env, handles);
}

/* Process-directed signals are for the loop's thread (Node's handlers), never one of the addon's:
 * the thread starts with every signal blocked. 0 when started, else pthread_create's error. */
int thread_start_unsignalled(pthread_t *thread, void *(*main)(void *), void *arg) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(thread, NULL, main, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

struct spawn_thread *spawn_thread_start(napi_env env) {
  struct spawn_thread *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->env = env;
  pthread_mutex_init(&t->lock, NULL);
  pthread_cond_init(&t->wake, NULL);
  napi_value name;
  napi_create_string_utf8(env, "shuma:spawn", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &t->context);
  int rc = thread_start_unsignalled(&t->thread, main_loop, t);
  if (rc != 0) {
    errno = rc;
    napi_async_destroy(env, t->context);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->wake);
    free(t);
    return NULL;
  }
  return t;
}

void spawn_thread_submit(struct spawn_thread *t, struct spawn_task *task) {
  task->prev_out = NULL;
  task->next_out = t->out;
  if (t->out) t->out->prev_out = task;
  t->out = task;
  pthread_mutex_lock(&t->lock);
  push(&t->todo, task);
  pthread_mutex_unlock(&t->lock);
  /* After the unlock, for the same reason: the woken thread must not find the lock still held. */
  pthread_cond_signal(&t->wake);
}

void spawn_thread_stop(struct spawn_thread *t) {
  pthread_mutex_lock(&t->lock);
  t->stopping = 1;
  pthread_cond_signal(&t->wake);
  pthread_mutex_unlock(&t->lock);
  /* A clone in progress returns at once (or at its child's exec, where the child is vforked). */
  pthread_join(t->thread, NULL);
  /* Nobody will hear of these: what a task started must end with it (addon.c drop_task). */
  for (struct spawn_task *task = take_all(&t->todo), *next; task; task = next) {
    next = task->next;
    unlink_out(t, task);
    task->drop(t->env, task, 0);
  }
  while (t->out) {
    struct spawn_task *task = t->out;
    unlink_out(t, task);
    task->drop(t->env, task, 1);
  }
  /* The async context is not destroyed: this may run in the environment's teardown (as before). */
  pthread_mutex_destroy(&t->lock);
  pthread_cond_destroy(&t->wake);
  free(t);
}
