#define _GNU_SOURCE
#include "thread-end.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <unistd.h>

#define THREAD_STACK_BYTES (64 * 1024)

void thread_end_keep(struct thread_end *end, napi_env env, napi_value callback, const char *name) {
  napi_value resource_name;
  end->env = env;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name);
  napi_create_reference(env, callback, 1, &end->callback);
  napi_async_init(env, NULL, resource_name, &end->context);
}

int thread_end_listen(struct thread_end *end, uv_loop_t *loop, uv_async_cb on_ended, void *owner) {
  if (uv_async_init(loop, &end->async, on_ended) != 0) return -1;
  end->async.data = owner;
  return 0;
}

void thread_end_forget(struct thread_end *end) {
  if (!end->callback) return;
  napi_delete_reference(end->env, end->callback);
  napi_async_destroy(end->env, end->context);
  end->callback = NULL;
}

void thread_end_call(struct thread_end *end, void (*before)(void *), void *arg) {
  if (!end->callback) return;
  napi_env env = end->env;
  napi_ref ref = end->callback;
  napi_async_context context = end->context;
  end->callback = NULL;
  if (before) before(arg);
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value callback = NULL, recv;
  napi_get_reference_value(env, ref, &callback);
  napi_get_global(env, &recv);
  if (callback && napi_make_callback(env, context, recv, callback, 0, NULL, NULL) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
  napi_close_handle_scope(env, scope);
  napi_delete_reference(env, ref);
  napi_async_destroy(env, context);
}

int thread_slot_take(int *running, int max) {
  if (__atomic_add_fetch(running, 1, __ATOMIC_SEQ_CST) <= max) return 1;
  __atomic_sub_fetch(running, 1, __ATOMIC_SEQ_CST);
  return 0;
}

void thread_slot_give(int *running) {
  __atomic_sub_fetch(running, 1, __ATOMIC_SEQ_CST);
}

int thread_slots_used(int *running) {
  return __atomic_load_n(running, __ATOMIC_SEQ_CST);
}

int thread_start_small(pthread_t *thread, void *(*main)(void *), void *arg) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, THREAD_STACK_BYTES);
  int failed = pthread_create(thread, &attr, main, arg);
  pthread_attr_destroy(&attr);
  return failed;
}

void thread_as_mover(const char *name) {
  pthread_setname_np(pthread_self(), name);
  /* Refused (a seccomp profile, say): the thread moves the bytes as before, only preempting. */
  struct sched_param none = {0};
  sched_setscheduler(0, SCHED_BATCH, &none);
}

void wake_poke(int fd) {
  uint64_t one = 1;
  ssize_t written = write(fd, &one, sizeof one);
  (void)written;
}

void wake_consume(int fd) {
  uint64_t count;
  ssize_t got = read(fd, &count, sizeof count);
  (void)got;
}
