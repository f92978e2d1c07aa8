#ifndef SHUMA_THREAD_END_H
#define SHUMA_THREAD_END_H

#include <node_api.h>
#include <pthread.h>
#include <uv.h>

/* What the addon's worker threads (capture-ring.c, flow-pump-thread.c, flow-fanout.c) share:
 * a JS callback told on the loop when the thread's work ended, the count of such threads over
 * the process, a small stack, and the eventfd that wakes a thread. */

/* A JS callback kept for the end, and the async handle a thread sends it through. */
struct thread_end {
  napi_env env;
  uv_async_t async; /* uv_async_init'ed by thread_end_listen, closed by the owner */
  napi_ref callback; /* NULL once called or forgotten */
  napi_async_context context;
};

/* Keeps `callback` (named `name` for async hooks) until thread_end_call or thread_end_forget. */
void thread_end_keep(struct thread_end *end, napi_env env, napi_value callback, const char *name);

/* The async handle the thread sends at its end; `on_ended` runs on the loop with
 * `handle->data == owner`. 0, or -1 (nothing to close). */
int thread_end_listen(struct thread_end *end, uv_loop_t *loop, uv_async_cb on_ended, void *owner);

/* The callback is let go uncalled (a stop, a collected handle, the environment gone). */
void thread_end_forget(struct thread_end *end);

/* On the loop: the callback is called once (a throw is the process's uncaught exception), then
 * let go. `before` (may be NULL) runs first, once the callback is taken: a callback may call back
 * into the addon (a stop), which must find it already gone. Nothing when it was let go before. */
void thread_end_call(struct thread_end *end, void (*before)(void *), void *arg);

/* A slot among `max` threads of one kind, counted over the process in `*running` (atomic);
 * 1 when taken. Every slot taken is given back by thread_slot_give. */
int thread_slot_take(int *running, int max);
void thread_slot_give(int *running);
int thread_slots_used(int *running);

/* A thread with a 64 KiB stack (they only move bytes between descriptors); 0 when started. */
int thread_start_small(pthread_t *thread, void *(*main)(void *), void *arg);

/* Called first on a thread that moves bytes between descriptors (an edge's pump, a flood's
 * capture): named `name` (at most 15 characters; `top -H`, /proc/<pid>/task/<tid>/comm), and
 * SCHED_BATCH, so that the write that wakes it never preempts the writer. A pipe wakes its
 * waiting reader at each write: a mover that preempted its writer each time cost the writer a
 * switch per write and itself a wake-up per write (a tapped `head | cat | cat`, last cat
 * captured, on two cores: the nodes switched out 6,700-11,800 times per GiB against 160-260
 * with SCHED_BATCH, the movers woken two to three times as often; docs/architecture.md, Session
 * s28). A batch thread keeps its fair share: it runs when a core is free, when its writer
 * blocks, or at the next tick. */
void thread_as_mover(const char *name);

/* The thread's wake-up eventfd: a poke, and the poke consumed once it woke. */
void wake_poke(int fd);
void wake_consume(int fd);

#endif
