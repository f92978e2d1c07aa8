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
#include <uv.h>

/* One thread of our own does the clones, so that the loop never waits for a child's exec.
 * Not libuv's pool: that pool is shared with fs, dns and crypto work, and a spawn queued
 * behind a slow getaddrinfo would hold up a restart for as long.
 *
 * The loop is told of finished tasks by a uv_async_t, referenced only while tasks are out:
 * an idle spawner thread does not keep the process alive. */

struct task_list {
  struct spawn_task *head, *tail;
};

struct spawn_thread {
  napi_env env;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  struct task_list todo, done;
  int stopping;
  /* Tasks submitted and not yet done: the async handle is referenced while > 0. Loop thread only. */
  int outstanding;
  uv_async_t async;
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

/* This thread only ever runs in short bursts (a clone, then the wait for the exec, then a
 * notification), and each is on a restart's path: ask the scheduler (EEVDF, Linux 6.6+: a
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
    task->run(task);
    pthread_mutex_lock(&t->lock);
    push(&t->done, task);
    /* Told after the unlock: the loop's thread, woken, takes the lock at once (on_done); had we
     * still held it, it would sleep on it again until we ran once more (two more wake-ups). */
    pthread_mutex_unlock(&t->lock);
    uv_async_send(&t->async);
    pthread_mutex_lock(&t->lock);
  }
  pthread_mutex_unlock(&t->lock);
  return NULL;
}

/* On the loop's thread: every finished task's `done`, in one callback scope, so that the
 * promises they settle run their reactions as after any I/O callback. */
static void on_done(uv_async_t *handle) {
  struct spawn_thread *t = handle->data;
  pthread_mutex_lock(&t->lock);
  struct spawn_task *task = take_all(&t->done);
  pthread_mutex_unlock(&t->lock);
  if (!task) return;
  napi_env env = t->env;
  napi_handle_scope handles;
  napi_callback_scope scope;
  napi_value resource;
  napi_open_handle_scope(env, &handles);
  napi_create_object(env, &resource);
  napi_open_callback_scope(env, resource, t->context, &scope);
  while (task) {
    struct spawn_task *next = task->next;
    t->outstanding--;
    task->done(env, task);
    task = next;
  }
  if (t->outstanding == 0) uv_unref((uv_handle_t *)&t->async);
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
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return NULL;
  struct spawn_thread *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->env = env;
  pthread_mutex_init(&t->lock, NULL);
  pthread_cond_init(&t->wake, NULL);
  if (uv_async_init(loop, &t->async, on_done) != 0) {
    free(t);
    return NULL;
  }
  t->async.data = t;
  uv_unref((uv_handle_t *)&t->async);
  napi_value name;
  napi_create_string_utf8(env, "shuma:spawn", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &t->context);
  int rc = thread_start_unsignalled(&t->thread, main_loop, t);
  if (rc != 0) {
    errno = rc;
    uv_close((uv_handle_t *)&t->async, NULL); /* t leaks: a failure to start a thread is rare and final */
    return NULL;
  }
  return t;
}

void spawn_thread_submit(struct spawn_thread *t, struct spawn_task *task) {
  if (t->outstanding++ == 0) uv_ref((uv_handle_t *)&t->async);
  pthread_mutex_lock(&t->lock);
  push(&t->todo, task);
  pthread_mutex_unlock(&t->lock);
  /* After the unlock, for the same reason: the woken thread must not find the lock still held. */
  pthread_cond_signal(&t->wake);
}

static void free_thread(uv_handle_t *handle) {
  free(handle->data);
}

void spawn_thread_stop(struct spawn_thread *t) {
  pthread_mutex_lock(&t->lock);
  t->stopping = 1;
  pthread_cond_signal(&t->wake);
  pthread_mutex_unlock(&t->lock);
  /* At most one clone in progress: it returns once that child has exec'd. */
  pthread_join(t->thread, NULL);
  /* Nobody will hear of these: what a task started must end with it (addon.c drop_task). */
  for (struct spawn_task *task = take_all(&t->done), *next; task; task = next) {
    next = task->next;
    task->drop(t->env, task, 1);
  }
  for (struct spawn_task *task = take_all(&t->todo), *next; task; task = next) {
    next = task->next;
    task->drop(t->env, task, 0);
  }
  pthread_mutex_destroy(&t->lock);
  pthread_cond_destroy(&t->wake);
  uv_close((uv_handle_t *)&t->async, free_thread);
}
