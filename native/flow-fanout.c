#define _GNU_SOURCE
#include "flow-fanout.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

/* A tapped edge's flow-socket readers, fed on a thread of the addon's (the JS side is
 * src/host/flows/native-fanout.ts). The edge's pumps (flow-pump.c, one per attempt of the
 * pipeline) tee its bytes into the fanout's pipe; this thread hands them to every reader's
 * socket. Before, the runtime's loop read that pipe and wrote each chunk to each socket: every
 * byte a reader saw went through JavaScript on the thread that runs every actor.
 *
 * - One reader with nothing queued: splice(2) from the pipe into its socket (no copy here).
 *   Otherwise a chunk is read once and written to each reader.
 * - A slow reader never holds the pipe: what its socket does not take is queued for it here,
 *   up to MAX_QUEUED bytes (as the JS channel's READER_MAX_BUFFERED); beyond, the reader is
 *   dropped: its connection is shut down, so it sees the end after what it already has, and
 *   knows it missed data (a hole in the stream would go unseen). The pipe is always read.
 * - Every byte in the pipe's order: one pipe for the edge's whole life, whichever attempt's
 *   pump wrote into it, and a reader's queue is written before anything newer.
 * - The end (fanoutClose): once every pump's copy of the pipe's write end is closed, what is
 *   left is read and handed on, each reader gets up to END_GRACE_MS to take its queue, then
 *   its connection is shut for writing (it reads to the end) and JS is told.
 *
 * The reader's socket stays the runtime's too: JS keeps reading it (a reader sends nothing; its
 * EOF says it left) and the fanout writes on a duplicate of its descriptor. */

#define CHUNK_BYTES (256 * 1024)
#define SPLICE_BYTES (1024 * 1024)
#define PIPE_BYTES (1024 * 1024)
#define MAX_QUEUED (4 * 1024 * 1024)
/* Asked of a reader's socket (the kernel doubles it, and caps it at net.core.wmem_max): a
 * reader takes up to this much per read, instead of the default ~200 KiB, so it keeps up with
 * a fast edge with fewer wake-ups (its own and this thread's). */
#define SOCKET_BUFFER_BYTES (1024 * 1024)
#define END_GRACE_MS 1000
#define STEPS_PER_WAKE 64
/* Fanouts with a thread at once (all environments); beyond, JS feeds the readers as before. */
#define MAX_THREADS 32
#define THREAD_STACK_BYTES (64 * 1024)

static int threads_running; /* __atomic builtins */

struct reader {
  int fd;
  int32_t id;
  char *queue; /* bytes its socket did not take yet, from `head` */
  size_t head, len, cap;
};

struct fanout {
  napi_env env;
  uv_async_t ended_async;
  napi_ref on_end;
  napi_async_context async;
  int refs; /* the JS handle, the async handle */
  pthread_t thread;
  int thread_running;
  int wake_fd;
  pthread_mutex_t lock;
  /* Under lock from here. */
  int tap_r, tap_w; /* tap_w: the fanout's own copy, kept until fanoutClose */
  int closing;      /* fanoutClose: the end comes with the pipe's EOF */
  int stopping;     /* the environment goes, or the handle was collected: stop now */
  int ended;
  uint64_t end_by_ns; /* set at the pipe's EOF: the readers' grace */
  struct reader *readers;
  int nreaders, cap_readers;
  int32_t next_id;
  uint32_t dropped; /* readers dropped for falling behind */
  uint64_t delivered; /* bytes taken from the pipe */
  char *buf;
  int no_splice; /* the readers' sockets refused splice(2): copies only */
  int closed;    /* close_all done (on the loop) */
};

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void unref_fanout(struct fanout *f) {
  if (--f->refs > 0) return;
  pthread_mutex_destroy(&f->lock);
  free(f->buf);
  free(f->readers);
  free(f);
}

/* The reader leaves the set. `how`: shutdown(2) first (-1: none, the reader is gone or JS let go). */
static void forget_reader(struct fanout *f, int i, int how) {
  struct reader *r = &f->readers[i];
  if (how >= 0) shutdown(r->fd, how);
  close(r->fd);
  free(r->queue);
  f->readers[i] = f->readers[--f->nreaders];
}

/* Queues bytes a reader's socket did not take; 0 when that would pass MAX_QUEUED. */
static int enqueue(struct reader *r, const char *bytes, size_t len) {
  if (r->len + len > MAX_QUEUED) return 0;
  if (r->head > 0 && r->head + r->len + len > r->cap) {
    memmove(r->queue, r->queue + r->head, r->len);
    r->head = 0;
  }
  if (r->len + len > r->cap) {
    size_t cap = r->cap ? r->cap : CHUNK_BYTES;
    while (cap < r->len + len) cap *= 2;
    char *grown = realloc(r->queue, cap);
    if (!grown) return 0;
    r->queue = grown;
    r->cap = cap;
  }
  memcpy(r->queue + r->head + r->len, bytes, len);
  r->len += len;
  return 1;
}

/* Writes what the reader's queue holds; 1 when it is empty, 0 when its socket is full, -1 gone. */
static int flush(struct reader *r) {
  while (r->len > 0) {
    ssize_t n = send(r->fd, r->queue + r->head, r->len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      r->head += (size_t)n;
      r->len -= (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    return -1;
  }
  r->head = 0;
  if (r->cap > CHUNK_BYTES) {
    /* A reader that caught up gives back what its burst took. */
    free(r->queue);
    r->queue = NULL;
    r->cap = 0;
  }
  return 1;
}

/* A chunk to a reader: written now as far as its socket takes it, queued after. 0: dropped. */
static int hand(struct fanout *f, int i, const char *bytes, size_t len) {
  struct reader *r = &f->readers[i];
  size_t off = 0;
  /* What it took since the last chunk is refilled first: a wake-up that reads many chunks
   * must not leave a reader's socket empty while its queue grows. */
  int flushed = r->len > 0 ? flush(r) : 1;
  if (flushed < 0) {
    forget_reader(f, i, -1);
    return 0;
  }
  if (flushed) {
    while (off < len) {
      ssize_t n = send(r->fd, bytes + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) off += (size_t)n;
      else if (n < 0 && errno == EINTR) continue;
      else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      else {
        forget_reader(f, i, -1);
        return 0;
      }
    }
  }
  if (off < len && !enqueue(r, bytes + off, len - off)) {
    f->dropped++;
    forget_reader(f, i, SHUT_RDWR);
    return 0;
  }
  return 1;
}

enum step { STEP_AGAIN, STEP_WAIT, STEP_EOF };

/* Moves what waits in the pipe to the readers (one step). */
static enum step step(struct fanout *f) {
  if (f->nreaders == 1 && f->readers[0].len == 0 && !f->no_splice) {
    /* The common case, one reader keeping up: its socket takes the pages themselves. */
    ssize_t n = splice(f->tap_r, NULL, f->readers[0].fd, NULL, SPLICE_BYTES, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
    if (n > 0) {
      f->delivered += (uint64_t)n;
      return STEP_AGAIN;
    }
    if (n == 0) return STEP_EOF;
    if (errno == EINTR) return STEP_AGAIN;
    if (errno == EPIPE || errno == ECONNRESET) {
      forget_reader(f, 0, -1); /* the reader is gone */
      return STEP_AGAIN;
    }
    if (errno != EAGAIN) {
      f->no_splice = 1; /* not a socket splice(2) can write to: the copy below */
      return STEP_AGAIN;
    }
    int avail = 0;
    if (ioctl(f->tap_r, FIONREAD, &avail) == 0 && avail == 0) return STEP_WAIT;
    /* Bytes wait but the socket is full: they are read and queued below. */
  }
  ssize_t n = read(f->tap_r, f->buf, CHUNK_BYTES);
  if (n == 0) return STEP_EOF;
  if (n < 0) {
    if (errno == EINTR) return STEP_AGAIN;
    return errno == EAGAIN ? STEP_WAIT : STEP_EOF;
  }
  f->delivered += (uint64_t)n;
  for (int i = f->nreaders - 1; i >= 0; i--) hand(f, i, f->buf, (size_t)n);
  return STEP_AGAIN;
}

/* Every queue written as far as its socket takes it; readers that left are forgotten. */
static int flush_all(struct fanout *f) {
  int waiting = 0;
  for (int i = f->nreaders - 1; i >= 0; i--) {
    int r = flush(&f->readers[i]);
    if (r < 0) forget_reader(f, i, -1);
    else if (r == 0) waiting = 1;
  }
  return waiting;
}

static void *thread_main(void *arg) {
  struct fanout *f = arg;
  struct pollfd fds[2 + 64];
  pthread_mutex_lock(&f->lock);
  for (;;) {
    if (f->stopping) break;
    int waiting = flush_all(f);
    for (int steps = 0; f->tap_r >= 0 && steps < STEPS_PER_WAKE; steps++) {
      enum step r = step(f);
      if (r == STEP_WAIT) break;
      if (r == STEP_EOF) {
        close(f->tap_r);
        f->tap_r = -1;
        f->end_by_ns = now_ns() + (uint64_t)END_GRACE_MS * 1000000u;
      }
    }
    waiting = flush_all(f) || waiting;
    if (f->tap_r < 0) {
      if (!waiting || now_ns() >= f->end_by_ns) {
        /* The end: each reader reads what it has, then its end of the stream. */
        while (f->nreaders > 0) forget_reader(f, f->nreaders - 1, SHUT_WR);
        f->ended = 1;
        break;
      }
    }
    int n = 0;
    fds[n++] = (struct pollfd){.fd = f->wake_fd, .events = POLLIN};
    if (f->tap_r >= 0) fds[n++] = (struct pollfd){.fd = f->tap_r, .events = POLLIN};
    for (int i = 0; i < f->nreaders && n < (int)(sizeof fds / sizeof fds[0]); i++)
      if (f->readers[i].len > 0) fds[n++] = (struct pollfd){.fd = f->readers[i].fd, .events = POLLOUT};
    int timeout = -1;
    if (f->tap_r < 0) {
      uint64_t now = now_ns();
      timeout = now >= f->end_by_ns ? 0 : (int)((f->end_by_ns - now) / 1000000u) + 1;
    }
    pthread_mutex_unlock(&f->lock);
    if (poll(fds, (nfds_t)n, timeout) > 0 && fds[0].revents) {
      uint64_t count;
      ssize_t r = read(f->wake_fd, &count, sizeof count);
      (void)r;
    }
    pthread_mutex_lock(&f->lock);
  }
  int ended = f->ended;
  pthread_mutex_unlock(&f->lock);
  if (ended) uv_async_send(&f->ended_async);
  return NULL;
}

static void wake(struct fanout *f) {
  uint64_t one = 1;
  ssize_t w = write(f->wake_fd, &one, sizeof one);
  (void)w;
}

static void on_async_closed(uv_handle_t *handle) {
  unref_fanout(handle->data);
}

static void env_gone(void *arg);

/* On the loop: the thread stopped and joined, every descriptor closed, JS not called again. */
static void close_all(struct fanout *f, int remove_hook) {
  if (f->closed) return;
  f->closed = 1;
  if (f->thread_running) {
    pthread_mutex_lock(&f->lock);
    f->stopping = 1;
    pthread_mutex_unlock(&f->lock);
    wake(f);
    pthread_join(f->thread, NULL);
    f->thread_running = 0;
    __atomic_sub_fetch(&threads_running, 1, __ATOMIC_SEQ_CST);
  }
  while (f->nreaders > 0) forget_reader(f, f->nreaders - 1, -1);
  if (f->tap_r >= 0) close(f->tap_r);
  if (f->tap_w >= 0) close(f->tap_w);
  if (f->wake_fd >= 0) close(f->wake_fd);
  f->tap_r = f->tap_w = f->wake_fd = -1;
  uv_close((uv_handle_t *)&f->ended_async, on_async_closed);
  if (remove_hook) napi_remove_env_cleanup_hook(f->env, env_gone, f);
  if (f->on_end) {
    napi_delete_reference(f->env, f->on_end);
    napi_async_destroy(f->env, f->async);
    f->on_end = NULL;
  }
}

static void env_gone(void *arg) {
  close_all(arg, 0);
}

static void on_ended(uv_async_t *handle) {
  struct fanout *f = handle->data;
  if (f->closed || !f->on_end) return;
  napi_env env = f->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value callback, recv;
  napi_get_reference_value(env, f->on_end, &callback);
  napi_get_global(env, &recv);
  napi_ref on_end = f->on_end;
  napi_async_context async = f->async;
  f->on_end = NULL;
  /* The thread is done: joined and closed before JS hears of it. */
  close_all(f, 1);
  if (callback && napi_make_callback(env, async, recv, callback, 0, NULL, NULL) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
  napi_close_handle_scope(env, scope);
  napi_delete_reference(env, on_end);
  napi_async_destroy(env, async);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  close_all(data, 1);
  unref_fanout(data);
}

static struct fanout *fanout_arg(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "not a flow fanout");
    return NULL;
  }
  return data;
}

/* fanoutOpen(onEnd) → fanout, or null when none can be had (no thread, pipe or memory): the
 * caller feeds its readers itself. */
static napi_value fanout_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  napi_valuetype type;
  if (argc < 1 || napi_typeof(env, arg, &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, "EINVAL", "fanoutOpen(onEnd) needs a function");
    return NULL;
  }
  napi_get_null(env, &result);
  struct fanout *f = calloc(1, sizeof *f);
  if (!f) return result;
  f->tap_r = f->tap_w = f->wake_fd = -1;
  int fds[2];
  if (!(f->buf = malloc(CHUNK_BYTES)) || pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
    free(f->buf);
    free(f);
    return result;
  }
  f->tap_r = fds[0];
  f->tap_w = fds[1];
  /* Room for a pump's tee of a grown pipe at once; when refused, the default. */
  fcntl(f->tap_w, F_SETPIPE_SZ, PIPE_BYTES);
  f->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  uv_loop_t *loop = NULL;
  napi_get_uv_event_loop(env, &loop);
  if (f->wake_fd < 0 || uv_async_init(loop, &f->ended_async, on_ended) != 0) {
    if (f->wake_fd >= 0) close(f->wake_fd);
    close(f->tap_r);
    close(f->tap_w);
    free(f->buf);
    free(f);
    return result;
  }
  f->env = env;
  f->refs = 2;
  f->ended_async.data = f;
  pthread_mutex_init(&f->lock, NULL);
  napi_value name;
  napi_create_string_utf8(env, "shuma:flow-fanout", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, arg, 1, &f->on_end);
  napi_async_init(env, NULL, name, &f->async);
  napi_add_env_cleanup_hook(env, env_gone, f);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, THREAD_STACK_BYTES);
  int started = __atomic_add_fetch(&threads_running, 1, __ATOMIC_SEQ_CST) <= MAX_THREADS &&
                pthread_create(&f->thread, &attr, thread_main, f) == 0;
  pthread_attr_destroy(&attr);
  if (!started) {
    __atomic_sub_fetch(&threads_running, 1, __ATOMIC_SEQ_CST);
    close_all(f, 1);
    unref_fanout(f);
    return result;
  }
  f->thread_running = 1;
  if (napi_create_external(env, f, finalize, NULL, &result) != napi_ok) {
    close_all(f, 1);
    unref_fanout(f);
    return NULL;
  }
  return result;
}

/* fanoutTapFd(fanout) → a new descriptor of the fanout's pipe's write end, for a pump's tap
 * (owned by the pump from then on); -1 once the fanout is closing. */
static napi_value fanout_tap_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  struct fanout *f = argc >= 1 ? fanout_arg(env, arg) : NULL;
  if (!f) return NULL;
  int fd = -1;
  if (!f->closed) {
    pthread_mutex_lock(&f->lock);
    if (!f->closing && f->tap_w >= 0) fd = fcntl(f->tap_w, F_DUPFD_CLOEXEC, 0);
    pthread_mutex_unlock(&f->lock);
  }
  napi_create_int32(env, fd, &result);
  return result;
}

/* fanoutAdd(fanout, socketFd) → the reader's id, -1 when it cannot be added (closing, out of
 * descriptors or memory). The fanout writes on a duplicate; `socketFd` stays the caller's. */
static napi_value fanout_add(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2], result;
  int32_t fd = -1, id = -1;
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  struct fanout *f = argc >= 2 ? fanout_arg(env, args[0]) : NULL;
  if (!f) return NULL;
  napi_get_value_int32(env, args[1], &fd);
  if (!f->closed && fd >= 0) {
    pthread_mutex_lock(&f->lock);
    if (!f->closing && !f->ended && f->nreaders < 64) {
      if (f->nreaders == f->cap_readers) {
        int cap = f->cap_readers ? f->cap_readers * 2 : 4;
        struct reader *grown = realloc(f->readers, (size_t)cap * sizeof *grown);
        if (grown) {
          f->readers = grown;
          f->cap_readers = cap;
        }
      }
      int dup = f->nreaders < f->cap_readers ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
      if (dup >= 0) {
        int size = SOCKET_BUFFER_BYTES;
        setsockopt(dup, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
        id = f->next_id++;
        f->readers[f->nreaders++] = (struct reader){.fd = dup, .id = id};
      }
    }
    pthread_mutex_unlock(&f->lock);
    wake(f);
  }
  napi_create_int32(env, id, &result);
  return result;
}

/* fanoutRemove(fanout, id): the reader left (JS saw its end): its duplicate is closed. */
static napi_value fanout_remove(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  int32_t id = -1;
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  struct fanout *f = argc >= 2 ? fanout_arg(env, args[0]) : NULL;
  if (!f) return NULL;
  napi_get_value_int32(env, args[1], &id);
  if (f->closed) return NULL;
  pthread_mutex_lock(&f->lock);
  for (int i = 0; i < f->nreaders; i++)
    if (f->readers[i].id == id) {
      forget_reader(f, i, -1);
      break;
    }
  pthread_mutex_unlock(&f->lock);
  return NULL;
}

/* fanoutDropped(fanout) → readers dropped so far for falling behind. */
static napi_value fanout_dropped(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  struct fanout *f = argc >= 1 ? fanout_arg(env, arg) : NULL;
  if (!f) return NULL;
  uint32_t dropped = 0;
  if (!f->closed) pthread_mutex_lock(&f->lock);
  dropped = f->dropped;
  if (!f->closed) pthread_mutex_unlock(&f->lock);
  napi_create_uint32(env, dropped, &result);
  return result;
}

/* fanoutClose(fanout): the edge is over. Once the pumps closed their taps, what is left reaches
 * the readers (END_GRACE_MS at most), their connections are ended, then onEnd is called. */
static napi_value fanout_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  struct fanout *f = argc >= 1 ? fanout_arg(env, arg) : NULL;
  if (!f || f->closed) return NULL;
  pthread_mutex_lock(&f->lock);
  f->closing = 1;
  if (f->tap_w >= 0) close(f->tap_w);
  f->tap_w = -1;
  pthread_mutex_unlock(&f->lock);
  wake(f);
  return NULL;
}

/* fanoutThreads() → fanouts with a thread now, over the process. */
static napi_value fanout_threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_create_int32(env, __atomic_load_n(&threads_running, __ATOMIC_SEQ_CST), &result);
  return result;
}

void flow_fanout_register(napi_env env, napi_value exports) {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"fanoutOpen", fanout_open},     {"fanoutTapFd", fanout_tap_fd},     {"fanoutAdd", fanout_add},
      {"fanoutRemove", fanout_remove}, {"fanoutDropped", fanout_dropped}, {"fanoutClose", fanout_close},
      {"fanoutThreads", fanout_threads},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn);
    napi_set_named_property(env, exports, fns[i].name, fn);
  }
}
