#define _GNU_SOURCE
#include "flow-fanout.h"
#include "flow-fanout-core.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* A flow fanout as JS sees it (src/host/flows/native-fanout.ts): opened with its thread, readers
 * added and removed, closed, its end told. How the bytes go: flow-fanout.c. */

/* Fanouts with a thread at once (all environments); beyond, JS feeds the readers as before. */
#define MAX_THREADS 32

static int threads_running;

static void unref_fanout(struct fanout *f) {
  if (--f->refs > 0) return;
  pthread_mutex_destroy(&f->lock);
  free(f->buf);
  free(f->readers);
  free(f);
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
    wake_poke(f->wake_fd);
    pthread_join(f->thread, NULL);
    f->thread_running = 0;
    thread_slot_give(&threads_running);
  }
  while (f->nreaders > 0) fanout_forget_reader(f, f->nreaders - 1, -1);
  if (f->tap_r >= 0) close(f->tap_r);
  if (f->tap_w >= 0) close(f->tap_w);
  if (f->wake_fd >= 0) close(f->wake_fd);
  f->tap_r = f->tap_w = f->wake_fd = -1;
  uv_close((uv_handle_t *)&f->end.async, on_async_closed);
  if (remove_hook) napi_remove_env_cleanup_hook(f->end.env, env_gone, f);
  thread_end_forget(&f->end);
}

static void env_gone(void *arg) {
  close_all(arg, 0);
}

static void close_all_of(void *f) {
  close_all(f, 1);
}

static void on_ended(uv_async_t *handle) {
  struct fanout *f = handle->data;
  /* The thread is done: joined and closed before JS hears of it. */
  if (!f->closed) thread_end_call(&f->end, close_all_of, f);
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
  if (f->wake_fd < 0 || thread_end_listen(&f->end, loop, on_ended, f) != 0) {
    if (f->wake_fd >= 0) close(f->wake_fd);
    close(f->tap_r);
    close(f->tap_w);
    free(f->buf);
    free(f);
    return result;
  }
  f->refs = 2;
  pthread_mutex_init(&f->lock, NULL);
  thread_end_keep(&f->end, env, arg, "shuma:flow-fanout");
  napi_add_env_cleanup_hook(env, env_gone, f);
  int slot = thread_slot_take(&threads_running, MAX_THREADS);
  if (!slot || thread_start_small(&f->thread, fanout_thread_main, f) != 0) {
    if (slot) thread_slot_give(&threads_running);
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
    if (!f->closing && !f->ended && f->nreaders < MAX_READERS) {
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
    wake_poke(f->wake_fd);
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
      fanout_forget_reader(f, i, -1);
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
  wake_poke(f->wake_fd);
  return NULL;
}

/* fanoutThreads() → fanouts with a thread now, over the process. */
static napi_value fanout_threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_create_int32(env, thread_slots_used(&threads_running), &result);
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
