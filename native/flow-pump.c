#define _GNU_SOURCE
#include "flow-pump-core.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <stdlib.h>
#include <unistd.h>

/* A tapped pipeline's edge pump in C: the bytes of one node's output go to its readers' stdin
 * pipes without entering JavaScript, with the semantics of flow-pump.ts.
 *
 * - One reader: splice(2) moves the pages from pipe to pipe (no copy). When the edge has a tap
 *   (a flow-socket reader is connected), tee(2) first duplicates them into the tap pipe, then
 *   exactly as many bytes are spliced on: the reader and the tap get the same bytes.
 * - Several readers (a fan-out): read into a buffer, write it whole to each (and each tap).
 * - Backpressure: nothing is read while a reader's pipe or a tap pipe is full (a tap pipe is
 *   the runtime's own copy, drained by its loop, never a socket reader's pace).
 * - A reader gone (EPIPE) is dropped; with none left the source is closed: its writer gets
 *   SIGPIPE at its next write. A tap gone is dropped alone.
 * - End of input closes every reader's stdin and every tap, then JS is told (`onEnd`).
 * - Every byte handed to a reader's pipe is counted on its edge (flow_pump_bytes).
 *
 * Where it runs: on a thread of its own (flow-pump-thread.c: at most 32 over the process; the
 * thread ends with the edge). On the loop's thread a pipe wakes its reader at every write of its writer:
 * ~10-25k wake-ups per GiB of the thread that runs every actor, each paying for a turn of the
 * loop, and the edge stalled whenever that thread was busy. The thread waits in poll(2) on
 * exactly what blocks it (or, on a fast edge, sleeps while its pipe fills: pace.h), takes the
 * lock only to step, and tells the loop once, at the end.
 * Beyond 32 an edge is pumped on the loop as before: every descriptor non-blocking,
 * watched by a level-triggered uv_poll only while the pump waits on it. Either way a wake-up
 * does a bounded amount of work, so one edge never holds the loop (or the lock) for long. */

#define SPLICE_BYTES (1024 * 1024)
#define STEPS_PER_WAKE 64

void unref_pump(struct flow_pump *p) {
  if (--p->refs > 0) return;
  free(p->buf);
  free(p);
}

static void on_closed(uv_handle_t *handle) {
  unref_pump(handle->data);
}

static void pump_on_event(uv_poll_t *handle, int status, int events);

void pump_watch(struct flow_pump *p, struct end *e, int want) {
  (void)p;
  e->want = want;
}

/* Makes the polls watch what this wake-up wants (no syscall for an end whose wait is unchanged). */
static void apply(struct flow_pump *p, struct end *e) {
  int want = e->want;
  e->want = WAIT_NONE;
  if (e->fd < 0 || e->waiting == want) return;
  e->waiting = want;
  if (!e->polled) {
    if (uv_poll_init(p->loop, &e->poll, e->fd) != 0) return;
    e->poll.data = p;
    e->polled = 1;
    p->refs++;
  }
  if (want == WAIT_NONE) uv_poll_stop(&e->poll);
  else uv_poll_start(&e->poll, want == WAIT_READ ? UV_READABLE : UV_WRITABLE, pump_on_event);
}

/* Stops watching and closes the descriptor; the poll handle is closed (asynchronously) too. */
void pump_shut(struct end *e) {
  if (e->fd < 0) return;
  if (e->polled) {
    uv_poll_stop(&e->poll);
    uv_close((uv_handle_t *)&e->poll, on_closed);
    e->polled = 0;
  }
  close(e->fd);
  e->fd = -1;
  e->waiting = WAIT_NONE;
}

void pump_close_all(struct flow_pump *p) {
  pump_shut(&p->src);
  for (int i = 0; i < p->nsinks; i++) {
    pump_shut(&p->sinks[i].out);
    pump_shut(&p->sinks[i].tap);
  }
}

static void lose_sink(struct flow_pump *p, struct sink *s) {
  pump_shut(&s->out);
  pump_shut(&s->tap);
  p->live--;
}

static struct sink *only_sink(struct flow_pump *p) {
  for (int i = 0; i < p->nsinks; i++)
    if (p->sinks[i].out.fd >= 0) return &p->sinks[i];
  return NULL;
}

/* Bytes waiting in the source pipe: tells "source empty" from "target full" after EAGAIN. */
static int source_has_data(struct flow_pump *p) {
  int n = 0;
  return ioctl(p->src.fd, FIONREAD, &n) == 0 && n > 0;
}

enum step { STEP_AGAIN, STEP_WAIT, STEP_END };

/* A full pipe's worth moved at once: this edge is fast, give its pipes room (once). */
void pump_grow_if_fast(struct flow_pump *p, ssize_t moved) {
  if (p->grown || moved < (ssize_t)FULL_PIPE_BYTES) return;
  p->grown = 1;
  fcntl(p->src.fd, F_SETPIPE_SZ, GROWN_PIPE_BYTES);
  for (int i = 0; i < p->nsinks; i++)
    if (p->sinks[i].out.fd >= 0) fcntl(p->sinks[i].out.fd, F_SETPIPE_SZ, GROWN_PIPE_BYTES);
}

/* One reader: tee into its tap (if any), splice on. */
static enum step splice_step(struct flow_pump *p, struct sink *s) {
  if (p->pending == 0 && s->tap.fd >= 0) {
    ssize_t n = tee(p->src.fd, s->tap.fd, SPLICE_BYTES, SPLICE_F_NONBLOCK);
    if (n > 0) {
      p->pending = (size_t)n;
      return STEP_AGAIN;
    }
    if (n == 0) return STEP_END;
    if (errno == EINTR) return STEP_AGAIN;
    if (errno == EAGAIN) {
      if (source_has_data(p)) pump_watch(p, &s->tap, WAIT_WRITE);
      else pump_watch(p, &p->src, WAIT_READ);
      return STEP_WAIT;
    }
    pump_shut(&s->tap); /* EPIPE: the runtime's tap reader let go; the edge goes on */
    return STEP_AGAIN;
  }
  size_t want = p->pending > 0 ? p->pending : SPLICE_BYTES;
  ssize_t n = splice(p->src.fd, NULL, s->out.fd, NULL, want, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
  if (n > 0) {
    s->bytes += (uint64_t)n;
    p->taken += (uint64_t)n;
    if (p->pending > 0) p->pending -= (size_t)n;
    pump_grow_if_fast(p, n);
    return STEP_AGAIN;
  }
  if (n == 0) return STEP_END;
  if (errno == EINTR) return STEP_AGAIN;
  if (errno == EAGAIN) {
    if (p->pending > 0 || source_has_data(p)) pump_watch(p, &s->out, WAIT_WRITE);
    else pump_watch(p, &p->src, WAIT_READ);
    return STEP_WAIT;
  }
  p->pending = 0;
  lose_sink(p, s);
  return STEP_AGAIN;
}

/* Writes what `e` has not taken of the chunk; 1 when it took it all, 0 when it must wait, -1 when gone. */
static int deliver(struct flow_pump *p, struct end *e, uint64_t *count) {
  while (e->off < p->len) {
    ssize_t n = write(e->fd, p->buf + e->off, p->len - e->off);
    if (n > 0) {
      e->off += (size_t)n;
      if (count) *count += (uint64_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pump_watch(p, e, WAIT_WRITE);
      return 0;
    }
    return -1;
  }
  return 1;
}

/* Several readers: a chunk is read only once every reader (and tap) took the last one. */
static enum step copy_step(struct flow_pump *p) {
  if (p->len == 0) {
    ssize_t n = read(p->src.fd, p->buf, COPY_BYTES);
    if (n == 0) return STEP_END;
    if (n < 0) {
      if (errno == EINTR) return STEP_AGAIN;
      if (errno == EAGAIN) {
        pump_watch(p, &p->src, WAIT_READ);
        return STEP_WAIT;
      }
      return STEP_END;
    }
    p->len = (size_t)n;
    p->taken += (uint64_t)n;
    pump_grow_if_fast(p, n);
    for (int i = 0; i < p->nsinks; i++) p->sinks[i].out.off = p->sinks[i].tap.off = 0;
  }
  int waiting = 0;
  for (int i = 0; i < p->nsinks; i++) {
    struct sink *s = &p->sinks[i];
    if (s->out.fd >= 0) {
      int r = deliver(p, &s->out, &s->bytes);
      if (r < 0) lose_sink(p, s);
      else if (r == 0) waiting = 1;
    }
    if (s->tap.fd >= 0) {
      int r = deliver(p, &s->tap, NULL);
      if (r < 0) pump_shut(&s->tap);
      else if (r == 0) waiting = 1;
    }
  }
  if (waiting) return STEP_WAIT;
  p->len = 0;
  return STEP_AGAIN;
}

void pump_apply_all(struct flow_pump *p) {
  apply(p, &p->src);
  for (int i = 0; i < p->nsinks; i++) {
    apply(p, &p->sinks[i].out);
    apply(p, &p->sinks[i].tap);
  }
}

int pump_run_steps(struct flow_pump *p) {
  for (int steps = 0; steps < STEPS_PER_WAKE; steps++) {
    /* No reader left: closing the source (finish) gives its writer SIGPIPE. */
    if (p->live == 0) return 1;
    /* A chunk in flight is finished in the mode that started it. */
    enum step r = p->len > 0 || (p->live > 1 && p->pending == 0) ? copy_step(p) : splice_step(p, only_sink(p));
    if (r == STEP_WAIT) return 0;
    if (r == STEP_END) return 1;
  }
  /* More to do: come back at once (the source is still readable), after others had a turn. */
  pump_watch(p, &p->src, WAIT_READ);
  return 0;
}

void pump_run(struct flow_pump *p) {
  if (p->finished) return;
  if (pump_run_steps(p)) pump_finish(p);
  else pump_apply_all(p);
}

static void pump_on_event(uv_poll_t *handle, int status, int events) {
  (void)events;
  struct flow_pump *p = handle->data;
  if (status < 0) {
    /* libuv stopped this poll itself (POLLERR: a pipe whose reader is gone); the next write
     * says EPIPE. Its end must be watched afresh if it is still wanted. */
    if (handle == &p->src.poll) p->src.waiting = WAIT_NONE;
    for (int i = 0; i < p->nsinks; i++) {
      if (handle == &p->sinks[i].out.poll) p->sinks[i].out.waiting = WAIT_NONE;
      if (handle == &p->sinks[i].tap.poll) p->sinks[i].tap.waiting = WAIT_NONE;
    }
  }
  pump_run(p);
}
