#define _GNU_SOURCE
#include "watch-set.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <uv.h>

#include "exit-watch.h"

/* One epoll set of the addon's, polled by the loop as one handle, holds every descriptor the
 * loop's thread watches for a spawn: the child's pidfd (exit-watch.c) and its output pipes until
 * they end or a stream takes them (output-watch.c).
 *
 * Each was a uv_poll of its own before, and a uv_poll costs ~6 system calls over its life (libuv
 * checks the descriptor with an epoll add and delete, sets it non-blocking, deletes it again when
 * started, adds it at the next poll, deletes it when stopped, and once more when closed): 16
 * epoll_ctl and 3 ioctl per run of a command, on the loop's thread. Here an entry costs one add
 * and one delete. The events are handed out as libuv would: one callback each, in the kernel's
 * order; a callback may take out any entry, and an entry taken out is never called again.
 *
 * The handle is referenced while the set holds an entry, as each uv_poll was while it watched:
 * a runtime waiting for a child's exit or output does not exit. */

#define BATCH 64

struct watch_set {
  uv_poll_t poll;
  int epfd;
  int entries;
  bool dispatching;
  /* Let go of during a batch: told `dropped` after it, since the batch may still name them. */
  struct watch_entry *dropped;
};

static void tell_dropped(struct watch_set *s) {
  while (s->dropped) {
    struct watch_entry *e = s->dropped;
    s->dropped = e->next_dropped;
    e->dropped(e);
  }
}

static void on_events(uv_poll_t *handle, int status, int events) {
  (void)status;
  (void)events;
  struct watch_set *s = handle->data;
  struct epoll_event ready[BATCH];
  int n;
  do n = epoll_wait(s->epfd, ready, BATCH, 0);
  while (n < 0 && errno == EINTR);
  s->dispatching = true;
  for (int i = 0; i < n; i++) {
    struct watch_entry *e = ready[i].data.ptr;
    if (e->in_set) e->ready(e, ready[i].events);
  }
  s->dispatching = false;
  tell_dropped(s);
}

static struct watch_set *set_of(struct addon_state *state) {
  if (state->watches) return state->watches;
  struct watch_set *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (s->epfd < 0) {
    free(s);
    return NULL;
  }
  if (uv_poll_init(state->loop, &s->poll, s->epfd) != 0 || uv_poll_start(&s->poll, UV_READABLE, on_events) != 0) {
    close(s->epfd);
    free(s);
    return NULL;
  }
  s->poll.data = s;
  uv_unref((uv_handle_t *)&s->poll);
  state->watches = s;
  return s;
}

int watch_set_add(struct addon_state *state, struct watch_entry *entry) {
  struct watch_set *s = set_of(state);
  if (!s) return errno ? errno : ENOMEM;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = entry};
  if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, entry->fd, &ev) < 0) return errno;
  entry->in_set = true;
  if (s->entries++ == 0) uv_ref((uv_handle_t *)&s->poll);
  return 0;
}

void watch_set_remove(struct addon_state *state, struct watch_entry *entry) {
  struct watch_set *s = state->watches;
  if (!entry->in_set || !s) return;
  entry->in_set = false;
  /* Explicitly, before the descriptor is closed: a close would not take it out of the set while a
   * fork of this process (child_process) still held the file, and its events would name a freed entry. */
  epoll_ctl(s->epfd, EPOLL_CTL_DEL, entry->fd, NULL);
  if (--s->entries == 0) uv_unref((uv_handle_t *)&s->poll);
}

void watch_set_drop(struct addon_state *state, struct watch_entry *entry) {
  watch_set_remove(state, entry);
  struct watch_set *s = state->watches;
  if (s && s->dispatching) {
    entry->next_dropped = s->dropped;
    s->dropped = entry;
  } else {
    entry->dropped(entry);
  }
}

static void free_set(uv_handle_t *handle) {
  struct watch_set *s = handle->data;
  close(s->epfd);
  free(s);
}

void watch_set_close(struct addon_state *state) {
  struct watch_set *s = state->watches;
  if (!s) return;
  state->watches = NULL;
  tell_dropped(s);
  uv_close((uv_handle_t *)&s->poll, free_set);
}
