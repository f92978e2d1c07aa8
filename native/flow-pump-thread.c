#define _GNU_SOURCE
#include "flow-pump-core.h"
#include "pace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* An edge's pump on a thread of its own (flow-pump.c says why): it waits in poll(2) on what
 * blocks it, or sleeps while a fast edge's pipe fills (pace.h), steps under the pump's lock and
 * tells the loop once, at the end. */

/* Edges with a thread of their own at once (all environments); beyond, on the loop. */
#define MAX_THREADS 32

static int threads_running;

/* The thread's poll set: the wake-up eventfd, then every end this wake-up must wait for. */
static int gather(struct flow_pump *p, struct pollfd *fds) {
  int n = 0;
  fds[n++] = (struct pollfd){.fd = p->wake_fd, .events = POLLIN};
  struct end *ends[1 + 2 * p->nsinks];
  int count = 0;
  ends[count++] = &p->src;
  for (int i = 0; i < p->nsinks; i++) {
    ends[count++] = &p->sinks[i].out;
    ends[count++] = &p->sinks[i].tap;
  }
  for (int i = 0; i < count; i++) {
    struct end *e = ends[i];
    if (e->fd >= 0 && e->want != WAIT_NONE) fds[n++] = (struct pollfd){.fd = e->fd, .events = e->want == WAIT_READ ? POLLIN : POLLOUT};
    e->want = WAIT_NONE;
  }
  return n;
}

static void *thread_main(void *arg) {
  struct flow_pump *p = arg;
  struct pollfd fds[2 + 2 * p->nsinks];
  thread_as_mover("shuma-pump");
  struct pace pace;
  pace_init(&pace);
  pthread_mutex_lock(&p->lock);
  while (!p->stopping) {
    uint64_t before = p->taken;
    if (pump_run_steps(p)) {
      pump_close_all(p);
      p->ended = 1;
      break;
    }
    if (pace_after(&pace, p->taken - before)) {
      /* A fast edge: its pipes get room for what a paced sleep lets in. */
      pump_grow_if_fast(p, FULL_PIPE_BYTES);
      pace_start(&pace, fcntl(p->src.fd, F_GETPIPE_SZ));
    }
    int n = gather(p, fds);
    pthread_mutex_unlock(&p->lock);
    if (pace_wait(&pace, fds, (nfds_t)n)) wake_consume(p->wake_fd);
    pthread_mutex_lock(&p->lock);
  }
  int ended = p->ended;
  pthread_mutex_unlock(&p->lock);
  /* The loop joins this thread and tells JavaScript. */
  if (ended) uv_async_send(&p->end.async);
  return NULL;
}

void pump_wake_thread(struct flow_pump *p) {
  wake_poke(p->wake_fd);
}

static void on_async_closed(uv_handle_t *handle) {
  unref_pump(handle->data);
}

/* On the loop: the thread is told to stop, and joined; the pump is the loop's from now on
 * (unless the thread ended it: `ended`, and end.async brings the end to JS). */
void pump_join_thread(struct flow_pump *p) {
  if (!p->thread_running) return;
  pthread_mutex_lock(&p->lock);
  p->stopping = 1;
  pthread_mutex_unlock(&p->lock);
  pump_wake_thread(p);
  pthread_join(p->thread, NULL);
  p->thread_running = 0;
  thread_slot_give(&threads_running);
}

/* On the loop, at the pump's end: the thread (if still running) and what it used go. */
void pump_release_thread(struct flow_pump *p) {
  if (!p->threaded) return;
  pump_join_thread(p);
  p->threaded = 0;
  close(p->wake_fd);
  p->wake_fd = -1;
  pthread_mutex_destroy(&p->lock);
  uv_close((uv_handle_t *)&p->end.async, on_async_closed);
}

/* The thread said the pump ended. */
static void on_ended(uv_async_t *handle) {
  pump_finish(handle->data);
}

/* A thread for the pump, when one may be had; 0: the pump runs on the loop. */
int pump_start_thread(struct flow_pump *p) {
  p->wake_fd = -1;
  if (!thread_slot_take(&threads_running, MAX_THREADS)) return 0;
  p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (p->wake_fd < 0 || thread_end_listen(&p->end, p->loop, on_ended, p) != 0) {
    if (p->wake_fd >= 0) close(p->wake_fd);
    p->wake_fd = -1;
    thread_slot_give(&threads_running);
    return 0;
  }
  p->refs++;
  pthread_mutex_init(&p->lock, NULL);
  p->threaded = 1;
  p->thread_running = thread_start_small(&p->thread, thread_main, p) == 0;
  if (p->thread_running) return 1;
  /* On the loop after all: the handles go at the end, as after a thread. */
  thread_slot_give(&threads_running);
  return 0;
}

int pump_threads_running(void) {
  return thread_slots_used(&threads_running);
}
