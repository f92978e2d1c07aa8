#define _GNU_SOURCE
#include "flow-pump.h"
#include "flow-pump-core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An edge pump as JS sees it (src/host/flows/native-pump.ts): started, counted, tapped,
 * destroyed, its end told; a tap's pipe and a grown pipe. How the bytes go: flow-pump.c. */

static void unlink_pump(struct flow_pump *p) {
  if (p->prev) p->prev->next = p->next;
  else if (p->state->pumps == p) p->state->pumps = p->next;
  if (p->next) p->next->prev = p->prev;
  p->prev = p->next = NULL;
}

void pump_finish(struct flow_pump *p) {
  if (p->finished) return;
  p->finished = 1;
  pump_release_thread(p);
  pump_close_all(p);
  unlink_pump(p);
  thread_end_call(&p->end, NULL, NULL);
}

/* Stops the pump without telling JS: destroy, the handle collected, the environment gone. */
static void stop_pump(struct flow_pump *p) {
  if (!p->finished) {
    p->finished = 1;
    unlink_pump(p);
    thread_end_forget(&p->end);
  }
  pump_release_thread(p);
  pump_close_all(p);
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
  p->end.env = env;
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
  thread_end_keep(&p->end, env, args[2], "shuma:flow-pump");
  if (napi_create_external(env, p, finalize, NULL, &result) != napi_ok) {
    pump_close_all(p);
    thread_end_forget(&p->end);
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
  if ((tapped && !taps_on_thread) || !pump_start_thread(p)) {
    pump_watch(p, &p->src, WAIT_READ);
    pump_apply_all(p);
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
  pump_shut(&s->tap);
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
    pump_wake_thread(p);
    napi_get_boolean(env, ok, &result);
    return result;
  }
  /* Tapped bytes go through JavaScript to the flow readers, at the pace of the loop that reads
   * them: with a thread pumping at the pipes' pace, the loop would fall behind and drop every
   * reader. A tapped edge is the loop's, as it always was. */
  pump_join_thread(p);
  int ok = !p->finished && !p->ended && s->out.fd >= 0;
  swap_tap(p, s, fd, ok);
  /* The pump may have been waiting on the tap it just lost (or, joined, on nothing yet). */
  if (!p->ended) pump_run(p);
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
  napi_create_int32(env, pump_threads_running(), &result);
  return result;
}

void flow_pump_close_all(struct addon_state *state) {
  /* The environment is going away: its handles are closed, JS is not called any more. */
  while (state->pumps) stop_pump(state->pumps);
}
