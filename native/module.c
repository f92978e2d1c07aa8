#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <node_api.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "capture-ring.h"
#include "exec-watch.h"
#include "exit-watch.h"
#include "flow-fanout.h"
#include "flow-pump.h"
#include "js-values.h"
#include "output-watch.h"
#include "relaunch.h"
#include "spawn.h"
#include "spawn-thread.h"
#include "watch-set.h"

/* What the addon exports, per environment (the main thread, or a worker that loads it): the
 * spawn path (addon.c), the edge pumps (flow-pump*.c), the fanouts (flow-fanout*.c), the
 * capture rings (capture-ring.c), a socket's peer, and a kill(2) that does not throw. */

/* peerCredentials(fd) → { pid, uid, gid } of the process at the other end of a unix socket, as
 * the kernel recorded it at connect(2) (SO_PEERCRED): Node does not expose it. */
static napi_value peer_credentials(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result = NULL, value;
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, &arg, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, arg, &fd) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "peerCredentials needs a socket descriptor");
    return NULL;
  }
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
    throw_spawn_error(env, errno, "getsockopt SO_PEERCRED", 0);
    return NULL;
  }
  if (napi_create_object(env, &result) != napi_ok) return NULL;
  napi_create_int64(env, cred.pid, &value);
  napi_set_named_property(env, result, "pid", value);
  napi_create_int64(env, cred.uid, &value);
  napi_set_named_property(env, result, "uid", value);
  napi_create_int64(env, cred.gid, &value);
  napi_set_named_property(env, result, "gid", value);
  return result;
}

/* kill(pid, signo) → 0, or the errno: "no such process" is an answer here, not an exception.
 * process.kill throws it, and its ErrnoException captures the whole stack: the reaper asks
 * whether a run's group is empty (signal 0) at every exit, and most are. */
static napi_value raw_kill(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2], result;
  int32_t pid, signo;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc < 2 || napi_get_value_int32(env, args[0], &pid) != napi_ok ||
      napi_get_value_int32(env, args[1], &signo) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "kill needs a pid and a signal number");
    return NULL;
  }
  napi_create_int32(env, kill(pid, signo) == 0 ? 0 : errno, &result);
  return result;
}

/* Nothing starts any more, and what was started and not told to the loop is killed: the spawner
 * thread's unsettled spawns (addon.c drop_task), the relaunch thread's untold runs. */
static void stop_spawning(struct addon_state *state) {
  if (state->thread) spawn_thread_stop(state->thread);
  state->thread = NULL;
  relaunch_close_all(state);
}

/* stopSpawning(): the same for the process's last moment. process.exit() runs no cleanup hook
 * (teardown below never runs on the main thread then), so the runtime's 'exit' hook calls this
 * before it kills its process groups; a spawn asked after it starts the threads again. */
static napi_value stop_spawning_now(napi_env env, napi_callback_info info) {
  struct addon_state *state;
  size_t argc = 0;
  if (napi_get_cb_info(env, info, &argc, NULL, NULL, (void **)&state) != napi_ok) return NULL;
  stop_spawning(state);
  return NULL;
}

/* The environment is going away: no more spawns, no more watches. */
static void teardown(void *arg) {
  struct addon_state *state = arg;
  stop_spawning(state);
  exec_watch_free_stacks(state);
  exit_watch_close_all(state);
  output_watch_close_all(state);
  watch_set_close(state);
  flow_pump_close_all(state);
  free(state);
}

/* Refuses to load where a spawn could not be watched or its descriptors not closed: the
 * runtime then falls back to child_process, saying why. */
static int kernel_supported(napi_env env) {
  int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
  if (fd < 0) {
    throw_spawn_error(env, errno, "pidfd_open (Linux 5.4 or later needed)", 0);
    return 0;
  }
  close(fd);
  if (syscall(SYS_close_range, ~0U - 1, ~0U, 0U) < 0) {
    throw_spawn_error(env, errno, "close_range (Linux 5.9 or later needed)", 0);
    return 0;
  }
  return 1;
}

/* Node unloads an addon (dlclose) once the last environment that loaded it is gone: a worker that
 * loaded it alone. Our teardown leaves work to run after that — the loop closes our async handles
 * later with close callbacks of ours (spawn-thread.c, relaunch.c), and a thread that cloned runs a
 * key destructor of ours (addon.c's child stack) as it ends — and that code was gone: the process
 * segfaulted at such a worker's end. Kept loaded for the process's life, as the main thread's is. */
static void stay_loaded(void) {
  Dl_info self;
  if (dladdr((void *)stay_loaded, &self) == 0 || !self.dli_fname) return;
  void *handle = dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
  if (handle) dlclose(handle);
}

NAPI_MODULE_INIT() {
  if (!kernel_supported(env)) return NULL;
  stay_loaded();
  /* One state per environment (main thread, or a worker that loads us): the children it
   * watches live on that environment's loop and are closed with it. */
  struct addon_state *state = calloc(1, sizeof *state);
  if (!state) return NULL;
  state->pid = getpid();
  if (napi_get_uv_event_loop(env, &state->loop) != napi_ok) {
    free(state);
    return NULL;
  }
  napi_add_env_cleanup_hook(env, teardown, state);
  napi_value fn, value;
  napi_create_function(env, "spawn", NAPI_AUTO_LENGTH, addon_spawn, state, &fn);
  napi_set_named_property(env, exports, "spawn", fn);
  napi_create_function(env, "spawnAsync", NAPI_AUTO_LENGTH, addon_spawn_async, state, &fn);
  napi_set_named_property(env, exports, "spawnAsync", fn);
  napi_create_function(env, "armRelaunch", NAPI_AUTO_LENGTH, relaunch_arm, state, &fn);
  napi_set_named_property(env, exports, "armRelaunch", fn);
  napi_create_function(env, "disarmRelaunch", NAPI_AUTO_LENGTH, relaunch_disarm, state, &fn);
  napi_set_named_property(env, exports, "disarmRelaunch", fn);
  napi_create_function(env, "stopSpawning", NAPI_AUTO_LENGTH, stop_spawning_now, state, &fn);
  napi_set_named_property(env, exports, "stopSpawning", fn);
  napi_create_function(env, "envBlock", NAPI_AUTO_LENGTH, env_block_make, NULL, &fn);
  napi_set_named_property(env, exports, "envBlock", fn);
  napi_create_function(env, "outputWatch", NAPI_AUTO_LENGTH, output_watch_start, state, &fn);
  napi_set_named_property(env, exports, "outputWatch", fn);
  napi_create_function(env, "outputUnwatch", NAPI_AUTO_LENGTH, output_watch_stop, NULL, &fn);
  napi_set_named_property(env, exports, "outputUnwatch", fn);
  napi_create_function(env, "peerCredentials", NAPI_AUTO_LENGTH, peer_credentials, NULL, &fn);
  napi_set_named_property(env, exports, "peerCredentials", fn);
  napi_create_function(env, "kill", NAPI_AUTO_LENGTH, raw_kill, NULL, &fn);
  napi_set_named_property(env, exports, "kill", fn);
  napi_create_function(env, "pumpStart", NAPI_AUTO_LENGTH, flow_pump_start, state, &fn);
  napi_set_named_property(env, exports, "pumpStart", fn);
  napi_create_function(env, "pumpBytes", NAPI_AUTO_LENGTH, flow_pump_bytes, NULL, &fn);
  napi_set_named_property(env, exports, "pumpBytes", fn);
  napi_create_function(env, "pumpTap", NAPI_AUTO_LENGTH, flow_pump_tap, NULL, &fn);
  napi_set_named_property(env, exports, "pumpTap", fn);
  napi_create_function(env, "pumpDestroy", NAPI_AUTO_LENGTH, flow_pump_destroy, NULL, &fn);
  napi_set_named_property(env, exports, "pumpDestroy", fn);
  napi_create_function(env, "pumpThreads", NAPI_AUTO_LENGTH, flow_pump_threads, NULL, &fn);
  napi_set_named_property(env, exports, "pumpThreads", fn);
  napi_create_function(env, "pipe", NAPI_AUTO_LENGTH, flow_pipe, NULL, &fn);
  napi_set_named_property(env, exports, "pipe", fn);
  napi_create_function(env, "growPipe", NAPI_AUTO_LENGTH, flow_grow_pipe, NULL, &fn);
  napi_set_named_property(env, exports, "growPipe", fn);
  napi_create_function(env, "captureStart", NAPI_AUTO_LENGTH, capture_ring_start, NULL, &fn);
  napi_set_named_property(env, exports, "captureStart", fn);
  napi_create_function(env, "captureDrain", NAPI_AUTO_LENGTH, capture_ring_drain, NULL, &fn);
  napi_set_named_property(env, exports, "captureDrain", fn);
  napi_create_function(env, "captureStop", NAPI_AUTO_LENGTH, capture_ring_stop, NULL, &fn);
  napi_set_named_property(env, exports, "captureStop", fn);
  flow_fanout_register(env, exports);
  napi_create_int32(env, STDIO_NULL, &value);
  napi_set_named_property(env, exports, "STDIO_NULL", value);
  napi_create_int32(env, STDIO_PIPE, &value);
  napi_set_named_property(env, exports, "STDIO_PIPE", value);
  return exports;
}

