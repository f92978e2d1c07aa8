#ifndef SHUMA_SPAWN_THREAD_H
#define SHUMA_SPAWN_THREAD_H

#include <node_api.h>
#include <pthread.h>

/* A unit of work: `run` on the spawner thread, then `done` on the loop's thread once its owner,
 * there, has learnt the outcome (spawn_thread_done); `drop` instead of `done` when the thread
 * stops first (run or not: `ran` says). */
struct spawn_task {
  struct spawn_task *next;
  struct spawn_task *prev_out, *next_out;
  void (*run)(struct spawn_task *task);
  void (*done)(napi_env env, struct spawn_task *task);
  void (*drop)(napi_env env, struct spawn_task *task, int ran);
};

struct spawn_thread;

/* Starts the thread for `env`'s loop; NULL (errno set) when it cannot. */
struct spawn_thread *spawn_thread_start(napi_env env);

void spawn_thread_submit(struct spawn_thread *thread, struct spawn_task *task);

/* On the loop's thread: `task` has run and its outcome is known; its `done` is called now. */
void spawn_thread_done(struct spawn_thread *thread, struct spawn_task *task);

/* Asks the scheduler for a short slice for the calling thread (see spawn-thread.c): for a thread
 * that only wakes to clone (the relaunch thread, relaunch.c). */
void spawn_thread_ask_for_short_slices(void);
/* Non-zero on a thread whose short slice was granted: its children inherit it until their exec. */
extern __thread int spawn_thread_short_slice;

/* The environment is going away (or the process, at process.exit): the thread ends, tasks not
 * yet done are dropped. */
void spawn_thread_stop(struct spawn_thread *thread);

/* A thread of the addon that takes no process-directed signal; 0 when started. */
int thread_start_unsignalled(pthread_t *thread, void *(*main)(void *), void *arg);

#endif
