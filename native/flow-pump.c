#define _GNU_SOURCE
#include "flow-pump.h"
#include "pace.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <uv.h>

/* A tapped pipeline's edge pump in C: the bytes of one node's output go to its readers' stdin
 * pipes without entering JavaScript, with the semantics of flow-pump.ts.
 *
 * - One reader: splice(2) moves the pages from pipe to pipe (no copy). When the edge has a tap
 *   (a flow-socket reader is connected), tee(2) first duplicates them into the tap pipe, then
 *   exactly as many bytes are spliced on: the reader and the tap get the same bytes.
 * - Several readers (a fan-out): read into a buffer, write it whole to each (and each tap).
 * - Backpressure: nothing is read while a reader's pipe or a tap pipe is full (a tap pipe is
 *   the runtime's own copy, drained by its loop, never a socket reader's pace).
 * - A reader gone (EPIPE) is dropped; with none left the source is closed: its writer gets
 *   SIGPIPE at its next write. A tap gone is dropped alone.
 * - End of input closes every reader's stdin and every tap, then `on_end` is called.
 * - Every byte handed to a reader's pipe is counted on its edge (flow_pump_bytes).
 *
 * Where it runs: on a thread of its own (at most MAX_THREADS over the process; the thread ends
 * with the edge). On the loop's thread a pipe wakes its reader at every write of its writer:
 * ~10-25k wake-ups per GiB of the thread that runs every actor, each paying for a turn of the
 * loop, and the edge stalled whenever that thread was busy. The thread waits in poll(2) on
 * exactly what blocks it (or, on a fast edge, sleeps while its pipe fills: pace.h), takes the
 * lock only to step, and tells the loop once, at the end.
 * Beyond MAX_THREADS an edge is pumped on the loop as before: every descriptor non-blocking,
 * watched by a level-triggered uv_poll only while the pump waits on it. Either way a wake-up
 * does a bounded amount of work, so one edge never holds the loop (or the lock) for long. */

#define COPY_BYTES (256 * 1024)
#define SPLICE_BYTES (1024 * 1024)
#define STEPS_PER_WAKE 64
/* A default pipe holds 64 KiB: a fast writer and its pump would wake each other every 64 KiB.
 * An edge that once moved a full pipe at a go has its pipes grown to this (the most an
 * unprivileged user may ask, /proc/sys/fs/pipe-max-size); slow edges keep the default and
 * cost the user's pipe allowance (fs.pipe-user-pages-soft) nothing more. When the kernel
 * refuses (the allowance is spent), the pipe stays as it was. */
#define FULL_PIPE_BYTES (64 * 1024)
#define GROWN_PIPE_BYTES (1024 * 1024)

/* Edges with a thread of their own at once (all environments); beyond, on the loop. */
#define MAX_THREADS 32
#define THREAD_STACK_BYTES (64 * 1024)

static int threads_running; /* updated with __atomic builtins */

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
  napi_env env;
  uv_loop_t *loop;
  napi_ref on_end;
  napi_async_context async;
  struct addon_state *state;
  struct flow_pump *prev, *next;
  /* The JS handle, every poll handle not yet closed, the async handle: freed when none is left. */
  int refs;
  int finished; /* JS told (or destroyed): nothing more happens */
  /* A pump that had a thread: `lock`, `wake_fd` and `ended_async` live until the pump ends.
   * While the thread runs it steps and closes under `lock` (every end, the counts, `ended`,
   * `stopping`); the loop hears of the end through `ended_async`. */
  int threaded;
  int thread_running;
  pthread_t thread;
  pthread_mutex_t lock;
  int wake_fd;  /* eventfd: stop */
  int stopping; /* the thread returns, leaving the pump to the loop */
  int ended;    /* the thread closed everything: end of input, or no reader left */
  uv_async_t ended_async;
  struct end src;
  int nsinks, live;
  char *buf;
  size_t len;     /* copy mode: the chunk in flight (0: none) */
  size_t pending; /* splice mode: bytes already teed to the tap, still to be spliced on */
  int grown;
  uint64_t taken; /* bytes taken from the source */
  struct sink sinks[];
};

static void unref_pump(struct flow_pump *p) {
  if (--p->refs > 0) return;
  free(p->buf);
  free(p);
}

static void on_closed(uv_handle_t *handle) {
  unref_pump(handle->data);
}

static void on_event(uv_poll_t *handle, int status, int events);
static void release_thread(struct flow_pump *p);

static void watch(struct flow_pump *p, struct end *e, int want) {
  (void)p;
  e->want = want;
}

/* Makes the polls watch what this wake-up wants (no syscall for an end whose wait is unchanged). */
static void apply(struct flow_pump *p, struct end *e) {
  int want = e->want;
  e->want = WAIT_NONE;
  if (e->fd < 0 || e->waiting == want) return;
  e->waiting = want;
  if (!e->polled) {
    if (uv_poll_init(p->loop, &e->poll, e->fd) != 0) return;
    e->poll.data = p;
    e->polled = 1;
    p->refs++;
  }
  if (want == WAIT_NONE) uv_poll_stop(&e->poll);
  else uv_poll_start(&e->poll, want == WAIT_READ ? UV_READABLE : UV_WRITABLE, on_event);
}

/* Stops watching and closes the descriptor; the poll handle is closed (asynchronously) too. */
static void shut(struct end *e) {
  if (e->fd < 0) return;
  if (e->polled) {
    uv_poll_stop(&e->poll);
    uv_close((uv_handle_t *)&e->poll, on_closed);
    e->polled = 0;
  }
  close(e->fd);
  e->fd = -1;
  e->waiting = WAIT_NONE;
}

static void unlink_pump(struct flow_pump *p) {
  if (p->prev) p->prev->next = p->next;
  else if (p->state->pumps == p) p->state->pumps = p->next;
  if (p->next) p->next->prev = p->prev;
  p->prev = p->next = NULL;
}

static void close_all(struct flow_pump *p) {
  shut(&p->src);
  for (int i = 0; i < p->nsinks; i++) {
    shut(&p->sinks[i].out);
    shut(&p->sinks[i].tap);
  }
}

static void forget_callback(struct flow_pump *p) {
  if (!p->on_end) return;
  napi_delete_reference(p->env, p->on_end);
  napi_async_destroy(p->env, p->async);
  p->on_end = NULL;
}

/* JS told the pump ended (once): its callback goes after it was called. */
static void tell_end(struct flow_pump *p) {
  napi_env env = p->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value callback, recv;
  napi_get_reference_value(env, p->on_end, &callback);
  napi_get_global(env, &recv);
  if (callback && napi_make_callback(env, p->async, recv, callback, 0, NULL, NULL) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
  napi_close_handle_scope(env, scope);
  forget_callback(p);
}

/* On the loop: the end of the pump, everything closed, then JS told (once). */
static void finish(struct flow_pump *p) {
  if (p->finished) return;
  p->finished = 1;
  release_thread(p);
  close_all(p);
  unlink_pump(p);
  tell_end(p);
}

static void lose_sink(struct flow_pump *p, struct sink *s) {
  shut(&s->out);
  shut(&s->tap);
  p->live--;
}

static struct sink *only_sink(struct flow_pump *p) {
  for (int i = 0; i < p->nsinks; i++)
    if (p->sinks[i].out.fd >= 0) return &p->sinks[i];
  return NULL;
}

/* Bytes waiting in the source pipe: tells "source empty" from "target full" after EAGAIN. */
static int source_has_data(struct flow_pump *p) {
  int n = 0;
  return ioctl(p->src.fd, FIONREAD, &n) == 0 && n > 0;
}

enum step { STEP_AGAIN, STEP_WAIT, STEP_END };

/* A full pipe's worth moved at once: this edge is fast, give its pipes room (once). */
static void grow_if_fast(struct flow_pump *p, ssize_t moved) {
  if (p->grown || moved < (ssize_t)FULL_PIPE_BYTES) return;
  p->grown = 1;
  fcntl(p->src.fd, F_SETPIPE_SZ, GROWN_PIPE_BYTES);
  for (int i = 0; i < p->nsinks; i++)
    if (p->sinks[i].out.fd >= 0) fcntl(p->sinks[i].out.fd, F_SETPIPE_SZ, GROWN_PIPE_BYTES);
}

/* One reader: tee into its tap (if any), splice on. */
static enum step splice_step(struct flow_pump *p, struct sink *s) {
  if (p->pending == 0 && s->tap.fd >= 0) {
    ssize_t n = tee(p->src.fd, s->tap.fd, SPLICE_BYTES, SPLICE_F_NONBLOCK);
    if (n > 0) {
      p->pending = (size_t)n;
      return STEP_AGAIN;
    }
    if (n == 0) return STEP_END;
    if (errno == EINTR) return STEP_AGAIN;
    if (errno == EAGAIN) {
      if (source_has_data(p)) watch(p, &s->tap, WAIT_WRITE);
      else watch(p, &p->src, WAIT_READ);
      return STEP_WAIT;
    }
    shut(&s->tap); /* EPIPE: the runtime's tap reader let go; the edge goes on */
    return STEP_AGAIN;
  }
  size_t want = p->pending > 0 ? p->pending : SPLICE_BYTES;
  ssize_t n = splice(p->src.fd, NULL, s->out.fd, NULL, want, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
  if (n > 0) {
    s->bytes += (uint64_t)n;
    p->taken += (uint64_t)n;
    if (p->pending > 0) p->pending -= (size_t)n;
    grow_if_fast(p, n);
    return STEP_AGAIN;
  }
  if (n == 0) return STEP_END;
  if (errno == EINTR) return STEP_AGAIN;
  if (errno == EAGAIN) {
    if (p->pending > 0 || source_has_data(p)) watch(p, &s->out, WAIT_WRITE);
    else watch(p, &p->src, WAIT_READ);
    return STEP_WAIT;
  }
  p->pending = 0;
  lose_sink(p, s);
  return STEP_AGAIN;
}

/* Writes what `e` has not taken of the chunk; 1 when it took it all, 0 when it must wait, -1 when gone. */
static int deliver(struct flow_pump *p, struct end *e, uint64_t *count) {
  while (e->off < p->len) {
    ssize_t n = write(e->fd, p->buf + e->off, p->len - e->off);
    if (n > 0) {
      e->off += (size_t)n;
      if (count) *count += (uint64_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      watch(p, e, WAIT_WRITE);
      return 0;
    }
    return -1;
  }
  return 1;
}

/* Several readers: a chunk is read only once every reader (and tap) took the last one. */
static enum step copy_step(struct flow_pump *p) {
  if (p->len == 0) {
    ssize_t n = read(p->src.fd, p->buf, COPY_BYTES);
    if (n == 0) return STEP_END;
    if (n < 0) {
      if (errno == EINTR) return STEP_AGAIN;
      if (errno == EAGAIN) {
        watch(p, &p->src, WAIT_READ);
        return STEP_WAIT;
      }
      return STEP_END;
    }
    p->len = (size_t)n;
    p->taken += (uint64_t)n;
    grow_if_fast(p, n);
    for (int i = 0; i < p->nsinks; i++) p->sinks[i].out.off = p->sinks[i].tap.off = 0;
  }
  int waiting = 0;
  for (int i = 0; i < p->nsinks; i++) {
    struct sink *s = &p->sinks[i];
    if (s->out.fd >= 0) {
      int r = deliver(p, &s->out, &s->bytes);
      if (r < 0) lose_sink(p, s);
      else if (r == 0) waiting = 1;
    }
    if (s->tap.fd >= 0) {
      int r = deliver(p, &s->tap, NULL);
      if (r < 0) shut(&s->tap);
      else if (r == 0) waiting = 1;
    }
  }
  if (waiting) return STEP_WAIT;
  p->len = 0;
  return STEP_AGAIN;
}

static void apply_all(struct flow_pump *p) {
  apply(p, &p->src);
  for (int i = 0; i < p->nsinks; i++) {
    apply(p, &p->sinks[i].out);
    apply(p, &p->sinks[i].tap);
  }
}

/* As much as can be done now (bounded); 1 when the pump is over (end of input, no reader left). */
static int run_steps(struct flow_pump *p) {
  for (int steps = 0; steps < STEPS_PER_WAKE; steps++) {
    /* No reader left: closing the source (finish) gives its writer SIGPIPE. */
    if (p->live == 0) return 1;
    /* A chunk in flight is finished in the mode that started it. */
    enum step r = p->len > 0 || (p->live > 1 && p->pending == 0) ? copy_step(p) : splice_step(p, only_sink(p));
    if (r == STEP_WAIT) return 0;
    if (r == STEP_END) return 1;
  }
  /* More to do: come back at once (the source is still readable), after others had a turn. */
  watch(p, &p->src, WAIT_READ);
  return 0;
}

/* On the loop (a pump without a thread): a wake-up, then wait for what blocks it. */
static void run(struct flow_pump *p) {
  if (p->finished) return;
  if (run_steps(p)) finish(p);
  else apply_all(p);
}

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
  struct pace pace;
  pace_init(&pace);
  pthread_mutex_lock(&p->lock);
  while (!p->stopping) {
    uint64_t before = p->taken;
    if (run_steps(p)) {
      close_all(p);
      p->ended = 1;
      break;
    }
    if (pace_after(&pace, p->taken - before)) {
      /* A fast edge: its pipes get room for what a paced sleep lets in. */
      grow_if_fast(p, FULL_PIPE_BYTES);
      pace_start(&pace, fcntl(p->src.fd, F_GETPIPE_SZ));
    }
    int n = gather(p, fds);
    pthread_mutex_unlock(&p->lock);
    if (pace_wait(&pace, fds, (nfds_t)n)) {
      uint64_t count;
      ssize_t r = read(p->wake_fd, &count, sizeof count);
      (void)r;
    }
    pthread_mutex_lock(&p->lock);
  }
  int ended = p->ended;
  pthread_mutex_unlock(&p->lock);
  /* The loop joins this thread and tells JavaScript. */
  if (ended) uv_async_send(&p->ended_async);
  return NULL;
}

static void wake_thread(struct flow_pump *p) {
  uint64_t one = 1;
  ssize_t w = write(p->wake_fd, &one, sizeof one);
  (void)w;
}

static void on_async_closed(uv_handle_t *handle) {
  unref_pump(handle->data);
}

/* On the loop: the thread is told to stop, and joined; the pump is the loop's from now on
 * (unless the thread ended it: `ended`, and ended_async brings the end to JS). */
static void join_thread(struct flow_pump *p) {
  if (!p->thread_running) return;
  pthread_mutex_lock(&p->lock);
  p->stopping = 1;
  pthread_mutex_unlock(&p->lock);
  wake_thread(p);
  pthread_join(p->thread, NULL);
  p->thread_running = 0;
  __atomic_sub_fetch(&threads_running, 1, __ATOMIC_SEQ_CST);
}

/* On the loop, at the pump's end: the thread (if still running) and what it used go. */
static void release_thread(struct flow_pump *p) {
  if (!p->threaded) return;
  join_thread(p);
  p->threaded = 0;
  close(p->wake_fd);
  p->wake_fd = -1;
  pthread_mutex_destroy(&p->lock);
  uv_close((uv_handle_t *)&p->ended_async, on_async_closed);
}

/* The thread said the pump ended. */
static void on_ended(uv_async_t *handle) {
  finish(handle->data);
}

/* A thread for the pump, when one may be had; 0: the pump runs on the loop. */
static int start_thread(struct flow_pump *p) {
  if (__atomic_add_fetch(&threads_running, 1, __ATOMIC_SEQ_CST) > MAX_THREADS) goto refused;
  p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (p->wake_fd < 0) goto refused;
  if (uv_async_init(p->loop, &p->ended_async, on_ended) != 0) {
    close(p->wake_fd);
    goto refused;
  }
  p->ended_async.data = p;
  p->refs++;
  pthread_mutex_init(&p->lock, NULL);
  p->threaded = 1;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, THREAD_STACK_BYTES);
  p->thread_running = pthread_create(&p->thread, &attr, thread_main, p) == 0;
  pthread_attr_destroy(&attr);
  if (p->thread_running) return 1;
  /* On the loop after all: the handles go at the end, as after a thread. */
  __atomic_sub_fetch(&threads_running, 1, __ATOMIC_SEQ_CST);
  return 0;
refused:
  p->wake_fd = -1;
  __atomic_sub_fetch(&threads_running, 1, __ATOMIC_SEQ_CST);
  return 0;
}

static void on_event(uv_poll_t *handle, int status, int events) {
  (void)events;
  struct flow_pump *p = handle->data;
  if (status < 0) {
    /* libuv stopped this poll itself (POLLERR: a pipe whose reader is gone); the next write
     * says EPIPE. Its end must be watched afresh if it is still wanted. */
    if (handle == &p->src.poll) p->src.waiting = WAIT_NONE;
    for (int i = 0; i < p->nsinks; i++) {
      if (handle == &p->sinks[i].out.poll) p->sinks[i].out.waiting = WAIT_NONE;
      if (handle == &p->sinks[i].tap.poll) p->sinks[i].tap.waiting = WAIT_NONE;
    }
  }
  run(p);
}

/* Stops the pump without telling JS: destroy, the handle collected, the environment gone. */
static void stop_pump(struct flow_pump *p) {
  if (!p->finished) {
    p->finished = 1;
    unlink_pump(p);
    forget_callback(p);
  }
  release_thread(p);
  close_all(p);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  stop_pump(data);
  unref_pump(data);
}

static int set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static struct flow_pump *pump_of(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "not a flow pump");
    return NULL;
  }
  return data;
}

/* pumpStart(sourceFd, sinkFds, onEnd, tapFds?, tapsOnThread?) → pump. Owns the descriptors
 * from then on. tapFds[i] (-1: none) is reader i's tap from the first byte: a thread starts at
 * once, so a tap added by pumpTap after this call could miss the first bytes. tapsOnThread: the
 * taps are read by a thread too (a flow fanout, flow-fanout.c), so a tapped edge keeps its
 * thread; without it a tapped edge is pumped on the loop, at the pace of the loop that reads
 * the tap. */
napi_value flow_pump_start(napi_env env, napi_callback_info info) {
  struct addon_state *state;
  size_t argc = 5;
  napi_value args[5], result = NULL;
  uint32_t nsinks = 0;
  int32_t src;
  if (napi_get_cb_info(env, info, &argc, args, NULL, (void **)&state) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, args[0], &src) != napi_ok || napi_get_array_length(env, args[1], &nsinks) != napi_ok ||
      nsinks == 0) {
    napi_throw_type_error(env, "EINVAL", "pumpStart(sourceFd, sinkFds, onEnd) needs a descriptor, readers and a function");
    return NULL;
  }
  struct flow_pump *p = calloc(1, sizeof *p + nsinks * sizeof(struct sink));
  if (!p || !(p->buf = nsinks > 1 ? malloc(COPY_BYTES) : calloc(1, 1))) {
    free(p);
    napi_throw_error(env, "ENOMEM", "pumpStart: out of memory");
    return NULL;
  }
  p->env = env;
  p->state = state;
  p->refs = 1;
  p->nsinks = p->live = (int)nsinks;
  p->src.fd = src;
  for (uint32_t i = 0; i < nsinks; i++) {
    napi_value item;
    int32_t fd = -1;
    napi_get_element(env, args[1], i, &item);
    napi_get_value_int32(env, item, &fd);
    p->sinks[i].out.fd = fd;
    p->sinks[i].tap.fd = -1;
    uint32_t ntaps = 0;
    if (argc >= 4 && napi_get_array_length(env, args[3], &ntaps) == napi_ok && i < ntaps) {
      napi_get_element(env, args[3], i, &item);
      if (napi_get_value_int32(env, item, &fd) == napi_ok && fd >= 0) {
        set_nonblocking(fd);
        p->sinks[i].tap.fd = fd;
      }
    }
  }
  napi_get_uv_event_loop(env, &p->loop);
  set_nonblocking(p->src.fd);
  for (int i = 0; i < p->nsinks; i++) set_nonblocking(p->sinks[i].out.fd);
  napi_value name;
  napi_create_string_utf8(env, "shuma:flow-pump", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, args[2], 1, &p->on_end);
  napi_async_init(env, NULL, name, &p->async);
  if (napi_create_external(env, p, finalize, NULL, &result) != napi_ok) {
    close_all(p);
    napi_delete_reference(env, p->on_end);
    napi_async_destroy(env, p->async);
    free(p->buf);
    free(p);
    return NULL;
  }
  p->next = state->pumps;
  if (p->next) p->next->prev = p;
  state->pumps = p;
  /* onEnd is never called before pumpStart returns: the thread's end reaches JS through the
   * loop, and so does the first wake-up of a pump on the loop. */
  int tapped = 0;
  for (int i = 0; i < p->nsinks; i++) tapped |= p->sinks[i].tap.fd >= 0;
  bool taps_on_thread = false;
  if (argc >= 5) napi_get_value_bool(env, args[4], &taps_on_thread);
  if ((tapped && !taps_on_thread) || !start_thread(p)) {
    watch(p, &p->src, WAIT_READ);
    apply_all(p);
  }
  return result;
}

/* pumpBytes(pump) → the bytes handed to each reader so far. */
napi_value flow_pump_bytes(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result, value;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  struct flow_pump *p = pump_of(env, arg);
  if (!p) return NULL;
  uint64_t bytes[p->nsinks];
  if (p->thread_running) pthread_mutex_lock(&p->lock);
  for (int i = 0; i < p->nsinks; i++) bytes[i] = p->sinks[i].bytes;
  if (p->thread_running) pthread_mutex_unlock(&p->lock);
  napi_create_array_with_length(env, (size_t)p->nsinks, &result);
  for (int i = 0; i < p->nsinks; i++) {
    napi_create_double(env, (double)bytes[i], &value);
    napi_set_element(env, result, (uint32_t)i, value);
  }
  return result;
}

/* The sink's tap ends; fd (owned from now on) becomes its new one if the pump still runs, else
 * it is closed. A chunk already in flight is not the new tap's: it starts with the next one. */
static void swap_tap(struct flow_pump *p, struct sink *s, int fd, int ok) {
  shut(&s->tap);
  if (fd < 0) return;
  if (!ok) {
    close(fd);
    return;
  }
  set_nonblocking(fd);
  s->tap.fd = fd;
  s->tap.off = p->len;
}

/* pumpTap(pump, sinkIndex, fd, onThread?): from now on a copy of reader i's bytes also goes to
 * fd (the write end of a pipe, owned from then on); fd -1 ends the tap. false: the pump has
 * ended (fd is closed all the same). onThread: as pumpStart's tapsOnThread. */
napi_value flow_pump_tap(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value args[4], result;
  int32_t index = -1, fd = -1;
  bool on_thread = false;
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  struct flow_pump *p = argc >= 3 ? pump_of(env, args[0]) : NULL;
  if (!p) return NULL;
  napi_get_value_int32(env, args[1], &index);
  napi_get_value_int32(env, args[2], &fd);
  if (index < 0 || index >= p->nsinks) {
    if (fd >= 0) close(fd);
    napi_throw_range_error(env, "EINVAL", "pumpTap: no such reader");
    return NULL;
  }
  if (argc >= 4) napi_get_value_bool(env, args[3], &on_thread);
  struct sink *s = &p->sinks[index];
  if (on_thread && p->thread_running) {
    /* The tap is a fanout's pipe, read by its own thread: the edge keeps its thread. */
    pthread_mutex_lock(&p->lock);
    int ok = !p->ended && s->out.fd >= 0;
    swap_tap(p, s, fd, ok);
    pthread_mutex_unlock(&p->lock);
    wake_thread(p);
    napi_get_boolean(env, ok, &result);
    return result;
  }
  /* Tapped bytes go through JavaScript to the flow readers, at the pace of the loop that reads
   * them: with a thread pumping at the pipes' pace, the loop would fall behind and drop every
   * reader. A tapped edge is the loop's, as it always was. */
  join_thread(p);
  int ok = !p->finished && !p->ended && s->out.fd >= 0;
  swap_tap(p, s, fd, ok);
  /* The pump may have been waiting on the tap it just lost (or, joined, on nothing yet). */
  if (!p->ended) run(p);
  napi_get_boolean(env, ok, &result);
  return result;
}

/* pumpDestroy(pump): closes every descriptor now; onEnd is not called. */
napi_value flow_pump_destroy(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  struct flow_pump *p = pump_of(env, arg);
  if (!p) return NULL;
  stop_pump(p);
  return NULL;
}

/* pipe() → [readFd, writeFd], both close-on-exec: a tap's pipe. */
napi_value flow_pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) {
    char message[128];
    snprintf(message, sizeof message, "pipe failed: %s", strerror(errno));
    napi_throw_error(env, uv_err_name(-errno), message);
    return NULL;
  }
  napi_value result, value;
  napi_create_array_with_length(env, 2, &result);
  for (uint32_t i = 0; i < 2; i++) {
    napi_create_int32(env, fds[i], &value);
    napi_set_element(env, result, i, value);
  }
  return result;
}

/* growPipe(fd) → the pipe's size after asking for GROWN_PIPE_BYTES (unchanged when the kernel
 * refuses): for a captured output that filled its pipe, as an edge does above. */
napi_value flow_grow_pipe(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result;
  int32_t fd = -1;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  napi_get_value_int32(env, arg, &fd);
  int size = fcntl(fd, F_SETPIPE_SZ, GROWN_PIPE_BYTES);
  if (size < 0) size = fcntl(fd, F_GETPIPE_SZ);
  napi_create_int32(env, size, &result);
  return result;
}

/* pumpThreads() → edges pumped on a thread of their own now, over the process. */
napi_value flow_pump_threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_create_int32(env, __atomic_load_n(&threads_running, __ATOMIC_SEQ_CST), &result);
  return result;
}

void flow_pump_close_all(struct addon_state *state) {
  /* The environment is going away: its handles are closed, JS is not called any more. */
  while (state->pumps) stop_pump(state->pumps);
}
