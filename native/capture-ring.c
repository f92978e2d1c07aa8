#define _GNU_SOURCE
#include "capture-ring.h"
#include "thread-end.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* A flooding writer's captured output, taken on a thread of its own (the JS side is
 * src/host/spawn/flood-capture.ts; the log ring pulls these bytes in when it is read).
 *
 * The log ring keeps the last `capacity` bytes: a flood of gigabytes keeps one megabyte of
 * them. Read on the runtime's loop, every byte was copied into JavaScript only to be
 * overwritten, and the loop's thread, which runs every actor, was woken for each write of the
 * writer (a pipe wakes a polling reader on every write): ~10k wake-ups per GiB, and the writer
 * stalled whenever that thread was late. Here the loop is not woken at all, and nothing is
 * copied: the bytes go from the child's pipe into a pipe of our own by splice(2) (page
 * references move) and the oldest are spliced into /dev/null (their pages freed) so that it
 * never holds more than `capacity` bytes. The ring's reader copies what it holds, at most
 * `capacity` bytes whatever the flood.
 *
 * A pipe has 256 slots (1 MiB), each a page or part of one: small writes could fill its slots
 * long before its bytes. Then what it holds is read out into `older` (a copy of at most
 * `capacity`, rare: a flood writes whole pages) and splicing goes on; the ring is the last
 * `capacity` bytes of `older` followed by the pipe. */

/* A wake-up does a bounded amount of work before it looks for a stop. */
#define STEPS_PER_WAKE 64
/* Floods at once with a thread each; beyond, a flood is read on the loop as any output. */
#define MAX_THREADS 32

static int threads_running; /* all environments: updated with __atomic builtins */

struct capture_ring {
  struct thread_end end; /* the thread tells the loop the input ended */
  int refs; /* the JS handle, the async handle until closed */
  pthread_t thread;
  int thread_running;
  int stop_fd; /* eventfd: wakes the thread to stop */
  int src;     /* a duplicate of the child's pipe's read end (the JS stream keeps the original) */
  pthread_mutex_t lock;
  /* Under lock: the ring, the count, the end. */
  int ring_r, ring_w; /* the ring pipe */
  size_t capacity;
  size_t in_ring; /* bytes in the ring pipe */
  char *older;    /* bytes read out of a slot-full ring pipe, oldest first */
  size_t older_len;
  uint64_t since; /* bytes taken since the last drain */
  int ended;      /* end of input, or a read error: the thread is done */
  int closed;
};

static void unref_ring(struct capture_ring *c) {
  if (--c->refs > 0) return;
  pthread_mutex_destroy(&c->lock);
  if (c->ring_r >= 0) close(c->ring_r);
  if (c->ring_w >= 0) close(c->ring_w);
  free(c->older);
  free(c);
}

static int devnull = -1;

/* Appends `len` bytes to `older`, keeping its last `capacity`. */
static void keep_older(struct capture_ring *c, const char *bytes, size_t len) {
  if (len >= c->capacity) {
    memcpy(c->older, bytes + len - c->capacity, c->capacity);
    c->older_len = c->capacity;
    return;
  }
  if (c->older_len + len > c->capacity) {
    size_t cut = c->older_len + len - c->capacity;
    memmove(c->older, c->older + cut, c->older_len - cut);
    c->older_len -= cut;
  }
  memcpy(c->older + c->older_len, bytes, len);
  c->older_len += len;
}

/* Reads the ring pipe whole into `into` (room for in_ring bytes); its length. */
static size_t read_ring(struct capture_ring *c, char *into) {
  size_t got = 0;
  while (got < c->in_ring) {
    ssize_t n = read(c->ring_r, into + got, c->in_ring - got);
    if (n > 0) got += (size_t)n;
    else if (n < 0 && errno == EINTR) continue;
    else break;
  }
  c->in_ring = 0;
  return got;
}

/* The ring pipe's slots are full: its bytes move to `older`, the pipe is empty again. */
static int unload_slots(struct capture_ring *c) {
  if (!c->older && !(c->older = malloc(c->capacity))) return -1;
  char *scratch = malloc(c->in_ring);
  if (!scratch) return -1;
  size_t got = read_ring(c, scratch);
  keep_older(c, scratch, got);
  free(scratch);
  return 0;
}

/* Room for `want` more bytes: what falls out of the last `capacity` goes to /dev/null. */
static void make_room(struct capture_ring *c, size_t want) {
  size_t covered = c->in_ring + want;
  if (covered <= c->capacity) {
    /* `older` only matters for what the pipe does not cover. */
    if (c->older_len + covered > c->capacity) {
      size_t cut = c->older_len + covered - c->capacity;
      memmove(c->older, c->older + cut, c->older_len - cut);
      c->older_len -= cut;
    }
    return;
  }
  c->older_len = 0;
  size_t drop = covered - c->capacity;
  while (drop > 0) {
    ssize_t n = splice(c->ring_r, NULL, devnull, NULL, drop, SPLICE_F_NONBLOCK);
    if (n > 0) {
      drop -= (size_t)n;
      c->in_ring -= (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
}

enum step { STEP_AGAIN, STEP_WAIT, STEP_END };

/* Under lock: moves what waits in the source into the ring. */
static enum step step(struct capture_ring *c) {
  int avail = 0;
  if (ioctl(c->src, FIONREAD, &avail) < 0) return STEP_END;
  if (avail == 0) {
    /* Nothing waits: the end (every writer gone) or a pause. */
    struct pollfd p = {.fd = c->src, .events = POLLIN};
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)) && ioctl(c->src, FIONREAD, &avail) == 0 && avail == 0) return STEP_END;
    return avail > 0 ? STEP_AGAIN : STEP_WAIT;
  }
  size_t want = (size_t)avail < c->capacity ? (size_t)avail : c->capacity;
  make_room(c, want);
  ssize_t n = splice(c->src, NULL, c->ring_w, NULL, want, SPLICE_F_NONBLOCK);
  if (n > 0) {
    c->in_ring += (size_t)n;
    c->since += (uint64_t)n;
    return STEP_AGAIN;
  }
  if (n == 0) return STEP_END;
  if (errno == EINTR) return STEP_AGAIN;
  if (errno == EAGAIN && c->in_ring > 0) return unload_slots(c) == 0 ? STEP_AGAIN : STEP_END;
  return STEP_END;
}

/* Under lock: what waits, taken (bounded); 1 at the end of input (or an error). */
static int take(struct capture_ring *c) {
  for (int i = 0; i < STEPS_PER_WAKE; i++) {
    enum step r = step(c);
    if (r == STEP_END) return 1;
    if (r == STEP_WAIT) return 0;
  }
  return 0;
}

static void *thread_main(void *arg) {
  struct capture_ring *c = arg;
  thread_as_mover("shuma-capture");
  for (;;) {
    struct pollfd fds[2] = {{.fd = c->stop_fd, .events = POLLIN}, {.fd = c->src, .events = POLLIN}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (fds[0].revents) return NULL; /* stopped: captureStop joins */
    pthread_mutex_lock(&c->lock);
    int ended = take(c);
    if (ended) c->ended = 1;
    pthread_mutex_unlock(&c->lock);
    if (ended) break;
  }
  /* The loop tells JavaScript, which takes the reading back (and reads the end). */
  uv_async_send(&c->end.async);
  return NULL;
}

static void on_async_closed(uv_handle_t *handle) {
  unref_ring(handle->data);
}

static void join_thread(struct capture_ring *c) {
  if (!c->thread_running) return;
  wake_poke(c->stop_fd);
  pthread_join(c->thread, NULL);
  c->thread_running = 0;
  thread_slot_give(&threads_running);
}

static void env_gone(void *arg);

static void close_all(struct capture_ring *c, int remove_hook) {
  if (c->closed) return;
  c->closed = 1;
  join_thread(c);
  if (c->src >= 0) close(c->src);
  if (c->stop_fd >= 0) close(c->stop_fd);
  c->src = c->stop_fd = -1;
  uv_close((uv_handle_t *)&c->end.async, on_async_closed);
  if (remove_hook) napi_remove_env_cleanup_hook(c->end.env, env_gone, c);
  thread_end_forget(&c->end);
}

static void env_gone(void *arg) {
  close_all(arg, 0);
}

static void on_ended(uv_async_t *handle) {
  struct capture_ring *c = handle->data;
  /* The callback calls captureStop, which closes: the reference goes after it returns. */
  if (!c->closed) thread_end_call(&c->end, NULL, NULL);
}

/* The ring a call's one argument names; NULL (a TypeError thrown) when it names none. */
static struct capture_ring *ring_arg(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value value;
  void *data = NULL;
  napi_get_cb_info(env, info, &argc, &value, NULL, NULL);
  if (argc < 1 || napi_get_value_external(env, value, &data) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "not a capture ring");
    return NULL;
  }
  return data;
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  /* Dropped without captureStop (its stream destroyed): its thread and descriptors go with it. */
  close_all(data, 1);
  unref_ring(data);
}

/* captureStart(fd, capacity, onEnd) → ring, or null when it cannot be had (no pipe that
 * large, no memory, no thread, MAX_THREADS floods already). `fd` stays the caller's: the ring
 * reads a duplicate, and the caller must not read `fd` until captureStop. */
napi_value capture_ring_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3], result = NULL;
  int32_t fd = -1;
  double capacity = 0;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, args[0], &fd) != napi_ok || napi_get_value_double(env, args[1], &capacity) != napi_ok ||
      capacity < 1 || capacity > (1 << 30)) {
    napi_throw_type_error(env, "EINVAL", "captureStart(fd, capacity, onEnd) needs a descriptor, a capacity and a function");
    return NULL;
  }
  napi_get_null(env, &result);
  struct capture_ring *c = calloc(1, sizeof *c);
  if (!c) return result;
  c->capacity = (size_t)capacity;
  c->ring_r = c->ring_w = -1;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0) {
    c->ring_r = fds[0];
    c->ring_w = fds[1];
  }
  if (devnull < 0) devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  /* The ring pipe must hold `capacity` bytes: not over /proc/sys/fs/pipe-max-size, nor once
   * the user's pipe allowance is spent. */
  int big_enough = c->ring_w >= 0 && fcntl(c->ring_w, F_SETPIPE_SZ, (int)capacity) >= capacity;
  c->src = big_enough ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
  c->stop_fd = c->src >= 0 ? eventfd(0, EFD_CLOEXEC) : -1;
  uv_loop_t *loop = NULL;
  napi_get_uv_event_loop(env, &loop);
  if (devnull < 0 || c->src < 0 || c->stop_fd < 0 || thread_end_listen(&c->end, loop, on_ended, c) != 0) {
    if (c->src >= 0) close(c->src);
    if (c->stop_fd >= 0) close(c->stop_fd);
    if (c->ring_r >= 0) close(c->ring_r);
    if (c->ring_w >= 0) close(c->ring_w);
    free(c);
    return result;
  }
  c->refs = 2; /* the JS handle, the async handle */
  pthread_mutex_init(&c->lock, NULL);
  thread_end_keep(&c->end, env, args[2], "shuma:capture-ring");
  napi_add_env_cleanup_hook(env, env_gone, c);
  int slot = thread_slot_take(&threads_running, MAX_THREADS);
  if (!slot || thread_start_small(&c->thread, thread_main, c) != 0) {
    if (slot) thread_slot_give(&threads_running);
    close_all(c, 1);
    unref_ring(c);
    return result;
  }
  c->thread_running = 1;
  if (napi_create_external(env, c, finalize, NULL, &result) != napi_ok) {
    close_all(c, 1);
    unref_ring(c);
    return NULL;
  }
  return result;
}

/* [the bytes kept since the last drain (at most `capacity`, oldest first), how many were taken
 * in that time]. */
static napi_value drain(napi_env env, struct capture_ring *c) {
  napi_value result, buffer, taken;
  void *data = NULL;
  pthread_mutex_lock(&c->lock);
  size_t total = c->older_len + c->in_ring;
  if (napi_create_buffer(env, total, &data, &buffer) != napi_ok) {
    pthread_mutex_unlock(&c->lock);
    return NULL;
  }
  if (c->older_len > 0) memcpy(data, c->older, c->older_len);
  size_t len = c->older_len + read_ring(c, (char *)data + c->older_len);
  c->older_len = 0;
  if (len < total) napi_create_buffer_copy(env, len, data, NULL, &buffer);
  napi_create_double(env, (double)c->since, &taken);
  c->since = 0;
  pthread_mutex_unlock(&c->lock);
  napi_create_array_with_length(env, 2, &result);
  napi_set_element(env, result, 0, buffer);
  napi_set_element(env, result, 1, taken);
  return result;
}

/* captureDrain(ring) → [buffer, read]: see drain(). */
napi_value capture_ring_drain(napi_env env, napi_callback_info info) {
  struct capture_ring *c = ring_arg(env, info);
  if (!c) return NULL;
  /* What waits in the pipe now is the ring's too: take it, so the ring is current (the end, if
   * found here, is left to the thread, which sees it too). */
  pthread_mutex_lock(&c->lock);
  if (!c->ended && !c->closed) take(c);
  pthread_mutex_unlock(&c->lock);
  return drain(env, c);
}

/* captureStop(ring) → [buffer, read]: the last drain; the thread is stopped and everything
 * closed (onEnd is not called after), and the caller may read its descriptor again, from where
 * the ring stopped. */
napi_value capture_ring_stop(napi_env env, napi_callback_info info) {
  struct capture_ring *c = ring_arg(env, info);
  if (!c) return NULL;
  if (c->closed) return drain(env, c);
  join_thread(c);
  napi_value result = drain(env, c);
  close_all(c, 1);
  return result;
}
