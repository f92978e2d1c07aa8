#define _GNU_SOURCE
#include "relaunch.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "exit-watch.h"
#include "js-values.h"
#include "spawn.h"
#include "spawn-thread.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* A relaunch armed ahead (a standing order, src/host/main-actors/standing-orders.ts): the next
 * run's spawn is prepared while the run lives, and the child's exit is watched here, on a
 * thread of ours, instead of on the loop. When the exit comes, this thread reaps it and, if
 * the order says so (always, or a failure), clones the next child there and then. The loop is
 * told after the fact, in one callback: the new child (or why it failed), then the exit.
 *
 * Measured first (bench (b), traced per restart against a program that stamps its own end and
 * start): on a loaded 2-core machine, a restart's tail was two wake-ups in a row — the loop
 * woken by the pidfd (exit → loop told: p95 ~3.6 ms), then the spawner thread woken by the
 * loop's submit — with the reaper, the standing order and the argument conversion between
 * them. Here one thread (short slice, like the spawner's) wakes once and spawns.
 *
 * Only the loop's thread arms, disarms and delivers; this thread only waits, reaps and clones.
 * An armed relaunch is ARMED until one side takes it under the lock: this thread (the exit
 * came: FIRED) or the loop (disarm: the watch polls again, nothing was started). */

enum { ARMED, FIRED };

struct relaunch {
  struct relaunch *next, *prev; /* the thread's armed (and fired, not yet delivered) list */
  struct relaunch *done_next;
  struct exit_watch *watch;
  pid_t pid;
  int pidfd;
  struct job *job;
  int always;
  napi_ref on_relaunched;
  int state;
  /* Written by the thread once FIRED. */
  int rc;
  siginfo_t info;
  pid_t launched; /* the new child's pid, 0 when none was started or its start failed */
  /* The thread woken for the exit (epoll_wait returned), reaped it, and resumed after the next exec. */
  double woke_at, reaped_at, execed_at;
};

struct relaunch_thread {
  napi_env env;
  pthread_t thread;
  pthread_mutex_t lock;
  int epfd, wake;
  int stopping;
  struct relaunch *armed;
  struct relaunch *done;
  /* Disarmed on the loop, freed by this thread before its next wait: an event it is handling
   * may still point at one (the loop took it off the epoll set meanwhile). */
  struct relaunch *graveyard;
  /* Armed or fired and not yet delivered: the async handle is referenced while > 0, as the
   * paused exit watches would have been. Loop thread only. */
  int outstanding;
  uv_async_t async;
  napi_async_context context;
};

static double monotonic_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void fire(struct relaunch_thread *t, struct relaunch *r, double woke_at) {
  pthread_mutex_lock(&t->lock);
  if (r->state != ARMED) {
    pthread_mutex_unlock(&t->lock);
    return;
  }
  memset(&r->info, 0, sizeof r->info);
  int rc;
  do rc = waitid(P_PIDFD, (id_t)r->pidfd, &r->info, WEXITED | WNOHANG);
  while (rc < 0 && errno == EINTR);
  if (rc == 0 && r->info.si_pid == 0) {
    pthread_mutex_unlock(&t->lock);
    return;
  }
  r->rc = rc;
  r->state = FIRED;
  epoll_ctl(t->epfd, EPOLL_CTL_DEL, r->pidfd, NULL);
  pthread_mutex_unlock(&t->lock);
  r->woke_at = woke_at;
  r->reaped_at = monotonic_ms();
  /* The actor's own guard (machines/command-setup.ts `relaunches`): a status lost counts as a failure. */
  int failed = rc < 0 || r->info.si_code != CLD_EXITED || r->info.si_status != 0;
  if (r->always || failed) {
    r->launched = spawn_job_launch(r->job);
    r->execed_at = monotonic_ms();
  }
  pthread_mutex_lock(&t->lock);
  r->done_next = t->done;
  t->done = r;
  pthread_mutex_unlock(&t->lock);
  uv_async_send(&t->async);
}

static void *main_loop(void *arg) {
  struct relaunch_thread *t = arg;
  spawn_thread_ask_for_short_slices();
  struct epoll_event events[16];
  for (;;) {
    pthread_mutex_lock(&t->lock);
    struct relaunch *dead = t->graveyard;
    t->graveyard = NULL;
    pthread_mutex_unlock(&t->lock);
    while (dead) {
      struct relaunch *next = dead->next;
      free(dead);
      dead = next;
    }
    int n = epoll_wait(t->epfd, events, 16, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    /* When this thread learnt of the exits (bench (b)'s "exit told"): one vDSO read a wake-up. */
    double woke_at = monotonic_ms();
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL) {
        uint64_t count;
        (void)!read(t->wake, &count, sizeof count);
        pthread_mutex_lock(&t->lock);
        int stopping = t->stopping;
        pthread_mutex_unlock(&t->lock);
        if (stopping) return NULL;
        continue;
      }
      fire(t, events[i].data.ptr, woke_at);
    }
  }
  return NULL;
}

/* A run started at an exit that nobody was told of: it, and what it started (a command leads a
 * group of its own, as the runtime's stops and its 'exit' hook assume), end here. Only while it
 * is unreaped: its pid, and a group led by it, cannot name anyone else then. */
static void kill_untold(pid_t pid) {
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
}

static void unlink_armed(struct relaunch_thread *t, struct relaunch *r) {
  if (r->prev) r->prev->next = r->next;
  else t->armed = r->next;
  if (r->next) r->next->prev = r->prev;
}

/* What the loop holds of it: the job (its pipes, the callbacks) and the reference. */
static void let_go(napi_env env, struct relaunch_thread *t, struct relaunch *r) {
  spawn_job_free(env, r->job);
  napi_delete_reference(env, r->on_relaunched);
  if (--t->outstanding == 0) uv_unref((uv_handle_t *)&t->async);
}

/* On the loop: onRelaunched(error, child, [reapedAt, execedAt, wokeAt]) — the new run first, so that
 * the exit told next finds it — then the exit to the watch's own callback. */
static void deliver(napi_env env, struct relaunch_thread *t, struct relaunch *r) {
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[3], callback, recv, error, child = NULL;
  napi_get_null(env, &argv[0]);
  napi_get_null(env, &argv[1]);
  if (r->always || r->rc < 0 || r->info.si_code != CLD_EXITED || r->info.si_status != 0) {
    /* Started, or its start failed: finish says which (the error as spawnAsync's). */
    child = spawn_job_finish(env, r->job);
    if (child) argv[1] = child;
    else if (napi_get_and_clear_last_exception(env, &error) == napi_ok) argv[0] = error;
  }
  double stamps[3] = {r->reaped_at, r->execed_at, r->woke_at};
  napi_create_array_with_length(env, 3, &argv[2]);
  for (uint32_t i = 0; i < 3; i++) {
    napi_value at;
    napi_create_double(env, stamps[i], &at);
    napi_set_element(env, argv[2], i, at);
  }
  napi_get_reference_value(env, r->on_relaunched, &callback);
  napi_get_global(env, &recv);
  napi_status called = napi_make_callback(env, t->context, recv, callback, 3, argv, NULL);
  /* Not taken: JavaScript could not run (the environment is ending: a worker's, or the process's
   * at exit, whose loop still runs this once before the cleanup hooks), or the callback threw.
   * Its exit watch, made by finish, reaps it. */
  if (called != napi_ok && child) kill_untold(r->launched);
  if (called == napi_pending_exception) {
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
  napi_close_handle_scope(env, scope);
  struct exit_watch *watch = r->watch;
  int rc = r->rc;
  siginfo_t info = r->info;
  let_go(env, t, r);
  free(r);
  exit_watch_tell(watch, rc, &info);
}

static void on_done(uv_async_t *handle) {
  struct relaunch_thread *t = handle->data;
  pthread_mutex_lock(&t->lock);
  struct relaunch *r = t->done;
  t->done = NULL;
  for (struct relaunch *d = r; d; d = d->done_next) unlink_armed(t, d);
  pthread_mutex_unlock(&t->lock);
  /* Oldest first: the list was pushed at its head. */
  struct relaunch *ordered = NULL;
  while (r) {
    struct relaunch *next = r->done_next;
    r->done_next = ordered;
    ordered = r;
    r = next;
  }
  while (ordered) {
    struct relaunch *next = ordered->done_next;
    deliver(t->env, t, ordered);
    ordered = next;
  }
}

static struct relaunch_thread *start(napi_env env) {
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return NULL;
  struct relaunch_thread *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->env = env;
  t->epfd = epoll_create1(EPOLL_CLOEXEC);
  t->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (t->epfd < 0 || t->wake < 0 || epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->wake, &ev) < 0) goto fail;
  pthread_mutex_init(&t->lock, NULL);
  if (uv_async_init(loop, &t->async, on_done) != 0) goto fail;
  t->async.data = t;
  uv_unref((uv_handle_t *)&t->async);
  napi_value name;
  napi_create_string_utf8(env, "shuma:relaunch", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &t->context);
  int rc = thread_start_unsignalled(&t->thread, main_loop, t);
  if (rc != 0) {
    errno = rc;
    uv_close((uv_handle_t *)&t->async, NULL); /* t leaks, as the spawner thread's: rare and final */
    return NULL;
  }
  return t;
fail:
  if (t->epfd >= 0) close(t->epfd);
  if (t->wake >= 0) close(t->wake);
  free(t);
  return NULL;
}

/* armRelaunch(file, argv, envp, cwd, stdio, limits, cgroupProcs, onExit, dieWithParent, ownSession,
 *             afterPid, always, onRelaunched) → true once armed; false when `afterPid` is no child
 * of ours still unreaped (its exit is on its way to the loop: nothing is armed). */
napi_value relaunch_arm(napi_env env, napi_callback_info info) {
  struct addon_state *state;
  size_t argc = 13;
  napi_value args[13], result = NULL;
  if (napi_get_cb_info(env, info, &argc, args, NULL, (void **)&state) != napi_ok) return NULL;
  int32_t pid;
  bool always;
  napi_valuetype type;
  if (argc < 13 || napi_get_value_int32(env, args[10], &pid) != napi_ok || napi_get_value_bool(env, args[11], &always) != napi_ok ||
      napi_typeof(env, args[12], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, "EINVAL", "armRelaunch needs spawn's 10 arguments, then afterPid, always and onRelaunched");
    return NULL;
  }
  struct exit_watch *watch = exit_watch_find(state, pid);
  if (!watch) {
    napi_get_boolean(env, false, &result);
    return result;
  }
  if (!state->relaunches && !(state->relaunches = start(env))) {
    throw_spawn_error(env, errno ? errno : EAGAIN, "start the relaunch thread", 0);
    return NULL;
  }
  struct relaunch_thread *t = state->relaunches;
  struct relaunch *r = calloc(1, sizeof *r);
  if (!r) {
    napi_throw_error(env, "ENOMEM", "armRelaunch: out of memory");
    return NULL;
  }
  if (!(r->job = spawn_job_prepare(env, info))) {
    free(r);
    return NULL;
  }
  napi_create_reference(env, args[12], 1, &r->on_relaunched);
  r->watch = watch;
  r->pid = pid;
  r->always = always;
  r->state = ARMED;
  r->pidfd = exit_watch_pause(watch);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = r};
  pthread_mutex_lock(&t->lock);
  r->next = t->armed;
  if (r->next) r->next->prev = r;
  t->armed = r;
  int added = epoll_ctl(t->epfd, EPOLL_CTL_ADD, r->pidfd, &ev);
  if (added < 0) unlink_armed(t, r);
  pthread_mutex_unlock(&t->lock);
  if (t->outstanding++ == 0) uv_ref((uv_handle_t *)&t->async);
  if (added < 0) {
    int err = errno;
    exit_watch_resume(watch);
    let_go(env, t, r);
    free(r);
    throw_spawn_error(env, err, "epoll_ctl", 0);
    return NULL;
  }
  napi_get_boolean(env, true, &result);
  return result;
}

/* disarmRelaunch(afterPid) → true: nothing will start at its exit, which the loop watches again;
 * false: nothing was armed, or the exit came first (its onRelaunched is on its way). */
napi_value relaunch_disarm(napi_env env, napi_callback_info info) {
  struct addon_state *state;
  size_t argc = 1;
  napi_value arg, result;
  int32_t pid;
  if (napi_get_cb_info(env, info, &argc, &arg, NULL, (void **)&state) != napi_ok || argc < 1 || napi_get_value_int32(env, arg, &pid) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "disarmRelaunch needs a pid");
    return NULL;
  }
  struct relaunch_thread *t = state->relaunches;
  struct relaunch *found = NULL;
  if (t) {
    pthread_mutex_lock(&t->lock);
    for (struct relaunch *r = t->armed; r; r = r->next) {
      if (r->pid != pid || r->state != ARMED) continue;
      found = r;
      epoll_ctl(t->epfd, EPOLL_CTL_DEL, r->pidfd, NULL);
      unlink_armed(t, r);
      r->state = -1;
      r->next = t->graveyard;
      t->graveyard = r;
      break;
    }
    pthread_mutex_unlock(&t->lock);
  }
  if (found) {
    exit_watch_resume(found->watch);
    let_go(env, t, found);
  }
  napi_get_boolean(env, found != NULL, &result);
  return result;
}

static void free_thread(uv_handle_t *handle) {
  free(handle->data);
}

void relaunch_close_all(struct addon_state *state) {
  struct relaunch_thread *t = state->relaunches;
  if (!t) return;
  state->relaunches = NULL;
  pthread_mutex_lock(&t->lock);
  t->stopping = 1;
  pthread_mutex_unlock(&t->lock);
  uint64_t one = 1;
  (void)!write(t->wake, &one, sizeof one);
  /* At most one clone in progress: it returns once that child has exec'd. */
  pthread_join(t->thread, NULL);
  /* What was armed or fired is dropped: the watches themselves are closed with the environment
   * (exit_watch_close_all), and the children left to the runtime's own shutdown. */
  struct relaunch *r = t->armed;
  while (r) {
    struct relaunch *next = r->next;
    /* Started and never told: nobody would ever stop it. */
    if (r->launched > 0) {
      kill_untold(r->launched);
      while (waitpid(r->launched, NULL, 0) < 0 && errno == EINTR) {
      }
    }
    spawn_job_free(t->env, r->job);
    free(r);
    r = next;
  }
  while ((r = t->graveyard)) {
    t->graveyard = r->next;
    free(r);
  }
  close(t->epfd);
  close(t->wake);
  pthread_mutex_destroy(&t->lock);
  uv_close((uv_handle_t *)&t->async, free_thread);
}
