#ifndef SHUMA_FLOW_PUMP_CORE_H
#define SHUMA_FLOW_PUMP_CORE_H

/* Inside an edge pump: moving the bytes and pumping on the loop (flow-pump.c), its thread
 * (flow-pump-thread.c), what JS calls (flow-pump-calls.c). */

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "exit-watch.h"
#include "thread-end.h"

/* A default pipe holds 64 KiB: a fast writer and its pump would wake each other every 64 KiB.
 * An edge that once moved a full pipe at a go has its pipes grown to this (the most an
 * unprivileged user may ask, /proc/sys/fs/pipe-max-size); slow edges keep the default and
 * cost the user's pipe allowance (fs.pipe-user-pages-soft) nothing more. When the kernel
 * refuses (the allowance is spent), the pipe stays as it was. */
#define FULL_PIPE_BYTES (64 * 1024)
#define GROWN_PIPE_BYTES (1024 * 1024)
#define COPY_BYTES (256 * 1024)

enum { WAIT_NONE = 0, WAIT_READ = 1, WAIT_WRITE = 2 };

struct end {
  int fd;
  uv_poll_t poll;
  int polled; /* uv_poll_init done: closed through uv_close */
  int waiting; /* what the poll watches now */
  int want;    /* what this wake-up found it must wait for */
  size_t off; /* copy mode: bytes of the current chunk this end has taken */
};

struct sink {
  struct end out;
  struct end tap; /* fd -1: no tap */
  uint64_t bytes;
};

struct flow_pump {
  struct thread_end end; /* its env, the JS callback told at the end, the thread's async handle */
  uv_loop_t *loop;
  struct addon_state *state;
  struct flow_pump *prev, *next;
  /* The JS handle, every poll handle not yet closed, the async handle: freed when none is left. */
  int refs;
  int finished; /* JS told (or destroyed): nothing more happens */
  /* A pump that had a thread: `lock`, `wake_fd` and `end.async` live until the pump ends.
   * While the thread runs it steps and closes under `lock` (every end, the counts, `ended`,
   * `stopping`); the loop hears of the end through `end.async`. */
  int threaded;
  int thread_running;
  pthread_t thread;
  pthread_mutex_t lock;
  int wake_fd;  /* eventfd: stop */
  int stopping; /* the thread returns, leaving the pump to the loop */
  int ended;    /* the thread closed everything: end of input, or no reader left */
  struct end src;
  int nsinks, live;
  char *buf;
  size_t len;     /* copy mode: the chunk in flight (0: none) */
  size_t pending; /* splice mode: bytes already teed to the tap, still to be spliced on */
  int grown;
  uint64_t taken; /* bytes taken from the source */
  struct sink sinks[];
};

/* flow-pump.c */
void unref_pump(struct flow_pump *p);
void pump_watch(struct flow_pump *p, struct end *e, int want);
void pump_apply_all(struct flow_pump *p);
void pump_shut(struct end *e);
void pump_close_all(struct flow_pump *p);
void pump_grow_if_fast(struct flow_pump *p, ssize_t moved);
/* As much as can be done now (bounded); 1 when the pump is over (end of input, no reader left). */
int pump_run_steps(struct flow_pump *p);
/* On the loop (a pump without a thread): a wake-up, then wait for what blocks it. */
void pump_run(struct flow_pump *p);

/* flow-pump-thread.c */
int pump_start_thread(struct flow_pump *p);
void pump_join_thread(struct flow_pump *p);
void pump_release_thread(struct flow_pump *p);
void pump_wake_thread(struct flow_pump *p);
int pump_threads_running(void);

/* flow-pump-calls.c: on the loop, the end of the pump, everything closed, then JS told (once). */
void pump_finish(struct flow_pump *p);

#endif
