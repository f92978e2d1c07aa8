#define _GNU_SOURCE
#include "exit-watch.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "watch-set.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* A child's exit, told by its pidfd becoming readable: no SIGCHLD handler, no polling, and
 * no waitpid(-1) — that would reap the children Node's child_process owns. libuv never
 * reaps ours: it waits for the pids of its own process handles only.
 *
 * The pidfd is watched in the addon's watch set (watch-set.c), which keeps the loop alive while
 * it holds it, as a child_process handle does: a runtime waiting only for a child must not exit
 * and lose that child's exit. */

struct exit_watch {
  struct watch_entry entry; /* first: the set's entry is its watch */
  pid_t pid;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  struct addon_state *state;
  struct exit_watch *prev, *next;
};

static void free_watch(struct watch_entry *entry) {
  free(entry);
}

/* Out of the set before the pidfd is closed (an epoll set must not name a closed descriptor). */
static void detach(struct exit_watch *w) {
  watch_set_remove(w->state, &w->entry);
  close(w->entry.fd);
  w->entry.fd = -1;
  if (w->prev) w->prev->next = w->next;
  else w->state->live = w->next;
  if (w->next) w->next->prev = w->prev;
}

static void release(struct exit_watch *w) {
  napi_delete_reference(w->env, w->callback);
  napi_async_destroy(w->env, w->async);
  watch_set_drop(w->state, &w->entry);
}

/* The exit is known (rc and info as waitid left them): the watch ends, the callback is called. */
void exit_watch_tell(struct exit_watch *w, int rc, const siginfo_t *info) {
  detach(w);

  napi_env env = w->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[2], callback, recv;
  napi_get_null(env, &argv[0]);
  napi_get_null(env, &argv[1]);
  /* rc < 0 (ECHILD: reaped by someone else) leaves the status unknown: both null. */
  if (rc == 0 && info->si_code == CLD_EXITED) napi_create_int32(env, info->si_status, &argv[0]);
  else if (rc == 0) napi_create_int32(env, info->si_status, &argv[1]);
  napi_get_reference_value(env, w->callback, &callback);
  napi_get_global(env, &recv);
  /* make_callback runs the microtasks and nextTicks the listener queues, as any I/O callback. */
  if (napi_make_callback(env, w->async, recv, callback, 2, argv, NULL) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
  napi_close_handle_scope(env, scope);
  release(w);
}

static void on_readable(struct watch_entry *entry, uint32_t events) {
  (void)events;
  struct exit_watch *w = (struct exit_watch *)entry;
  siginfo_t info;
  memset(&info, 0, sizeof info);
  int rc;
  do rc = waitid(P_PIDFD, (id_t)w->entry.fd, &info, WEXITED | WNOHANG);
  while (rc < 0 && errno == EINTR);
  /* Readable before the child is a zombie does not happen; if it ever did, wait for the next. */
  if (rc == 0 && info.si_pid == 0) return;
  exit_watch_tell(w, rc, &info);
}

struct exit_watch *exit_watch_find(struct addon_state *state, pid_t pid) {
  for (struct exit_watch *w = state->live; w; w = w->next)
    if (w->pid == pid) return w;
  return NULL;
}

/* Another thread reaps it meanwhile (relaunch.c): the loop stops watching, the pidfd stays open. */
int exit_watch_pause(struct exit_watch *w) {
  watch_set_remove(w->state, &w->entry);
  return w->entry.fd;
}

int exit_watch_resume(struct exit_watch *w) {
  return -watch_set_add(w->state, &w->entry);
}

napi_status exit_watch_start(napi_env env, struct addon_state *state, pid_t pid, int pidfd, napi_value callback) {
  struct exit_watch *w = calloc(1, sizeof *w);
  if (!w) {
    close(pidfd);
    return napi_generic_failure;
  }
  w->entry.ready = on_readable;
  w->entry.dropped = free_watch;
  w->entry.fd = pidfd;
  w->pid = pid;
  w->env = env;
  w->state = state;
  if (watch_set_add(state, &w->entry) != 0) {
    close(pidfd);
    free(w);
    return napi_generic_failure;
  }
  napi_value name;
  napi_create_string_utf8(env, "shuma:child-exit", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, callback, 1, &w->callback);
  napi_async_init(env, NULL, name, &w->async);
  w->next = state->live;
  if (w->next) w->next->prev = w;
  state->live = w;
  return napi_ok;
}

void exit_watch_close_all(void *arg) {
  struct addon_state *state = arg;
  /* The environment is being torn down: its references and async contexts go with it, only
   * the loop's handles must be closed. The children themselves are left to the runtime's
   * own shutdown (they were told to stop before this). */
  while (state->live) {
    struct exit_watch *w = state->live;
    detach(w);
    watch_set_drop(state, &w->entry);
  }
}
