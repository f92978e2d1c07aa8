#define _GNU_SOURCE
#include "output-watch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <uv.h>

#include "exit-watch.h"
#include "js-values.h"
#include "watch-set.h"

/* The first news of a child's output pipe, before any stream is made for it (spawn/captured-output.ts).
 *
 * Most commands say nothing on one of their two outputs, many on both: a net.Socket per output
 * (made, read once to its end, destroyed, closed: ~0.1 ms of the loop's time per run, and its
 * garbage) only ever learnt that the pipe had ended empty. This watch polls the read end in the
 * addon's watch set (watch-set.c) instead and calls onReady(ended) once, at the first sign of
 * life: ended = true when every writer is gone and nothing was written (the JS side closes the
 * descriptor; no stream is ever made); false when there is something to read (bytes, or an error
 * a read will report): the watch has ended, and the JS side reads the descriptor with a stream
 * from there on.
 *
 * The descriptor leaves the set before the callback runs, so a stream may watch it at once. The
 * set keeps the loop alive while it holds it, as the stream it stands for would: a runtime waiting
 * for a command's output does not exit. */

struct output_watch {
  struct watch_entry entry; /* first: the set's entry is its watch */
  bool watching;
  /* Freed once both let go: the watch set (its drop) and JS (the handle's finalizer). */
  int holders;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  struct addon_state *state;
  struct output_watch *prev, *next;
};

static void let_go(struct output_watch *w) {
  if (--w->holders == 0) free(w);
}

static void on_dropped(struct watch_entry *entry) {
  let_go((struct output_watch *)entry);
}

static void on_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  let_go(data);
}

/* Stops watching now (the descriptor leaves the loop's epoll set in this call); the handle's memory goes later. */
static void end_watch(struct output_watch *w, bool release_js) {
  if (!w->watching) return;
  w->watching = false;
  if (w->prev) w->prev->next = w->next;
  else w->state->outputs = w->next;
  if (w->next) w->next->prev = w->prev;
  if (release_js) {
    napi_delete_reference(w->env, w->callback);
    napi_async_destroy(w->env, w->async);
  }
  watch_set_drop(w->state, &w->entry);
}

/* 1: something to read (or an error to read); 0: every writer gone, nothing written; -1: neither yet. */
static int pipe_news(int fd, uint32_t events) {
  if (events & (EPOLLIN | EPOLLERR)) return 1;
  if (!(events & EPOLLHUP)) return -1;
  /* No writer is left, so nothing more can come; but epoll read "empty" and "no writers" apart:
   * a last write may have landed between. Counted under the pipe's lock, this is the last word. */
  int waiting = 0;
  if (ioctl(fd, FIONREAD, &waiting) < 0 || waiting > 0) return 1;
  return 0;
}

static void on_event(struct watch_entry *entry, uint32_t events) {
  struct output_watch *w = (struct output_watch *)entry;
  int news = pipe_news(w->entry.fd, events);
  if (news < 0) return;
  napi_env env = w->env;
  napi_ref callback_ref = w->callback;
  napi_async_context async = w->async;
  end_watch(w, false);

  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[1], callback, recv;
  napi_get_boolean(env, news == 0, &argv[0]);
  napi_get_reference_value(env, callback_ref, &callback);
  napi_get_global(env, &recv);
  napi_status called = napi_make_callback(env, async, recv, callback, 1, argv, NULL);
  napi_delete_reference(env, callback_ref);
  napi_async_destroy(env, async);
  if (called == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
  napi_close_handle_scope(env, scope);
}

napi_value output_watch_start(napi_env env, napi_callback_info info) {
  struct addon_state *state;
  size_t argc = 2;
  napi_value args[2], result = NULL;
  int32_t fd;
  napi_valuetype type;
  if (napi_get_cb_info(env, info, &argc, args, NULL, (void **)&state) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, args[0], &fd) != napi_ok || napi_typeof(env, args[1], &type) != napi_ok ||
      type != napi_function) {
    napi_throw_type_error(env, "EINVAL", "outputWatch needs a descriptor and a callback");
    return NULL;
  }
  struct output_watch *w = calloc(1, sizeof *w);
  if (!w) {
    napi_throw_error(env, "ENOMEM", "outputWatch: out of memory");
    return NULL;
  }
  w->entry.ready = on_event;
  w->entry.dropped = on_dropped;
  w->entry.fd = fd;
  w->env = env;
  w->state = state;
  w->holders = 2;
  int err = watch_set_add(state, &w->entry);
  if (err != 0) {
    free(w);
    throw_spawn_error(env, err, "outputWatch", 0);
    return NULL;
  }
  napi_value name;
  napi_create_string_utf8(env, "shuma:child-output", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, args[1], 1, &w->callback);
  napi_async_init(env, NULL, name, &w->async);
  w->watching = true;
  w->next = state->outputs;
  if (w->next) w->next->prev = w;
  state->outputs = w;
  if (napi_create_external(env, w, on_finalize, NULL, &result) != napi_ok) {
    /* No external owns it: the set's letting go alone frees it. */
    w->holders = 1;
    end_watch(w, true);
    return NULL;
  }
  return result;
}

napi_value output_watch_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result;
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, &arg, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_external(env, arg, &data) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "outputUnwatch needs an outputWatch handle");
    return NULL;
  }
  struct output_watch *w = data;
  bool was = w->watching;
  end_watch(w, true);
  napi_get_boolean(env, was, &result);
  return result;
}

void output_watch_close_all(void *arg) {
  struct addon_state *state = arg;
  /* Torn down with the environment: its references go with it, only the loop's handles are closed. */
  while (state->outputs) end_watch(state->outputs, false);
}
