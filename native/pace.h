#ifndef SHUMA_PACE_H
#define SHUMA_PACE_H

/* Pacing a thread that drains a pipe a fast writer fills (flow-pump.c's edges). Waiting in poll(2) returns at the writer's next write (a pipe wakes its reader at
 * every write: 8 KiB for head, 128 KiB for cat: up to 130k wake-ups per GiB of the thread, and
 * as many of whoever reads after it). A paced thread sleeps while about half the pipe fills,
 * then moves it at once. The sleep follows the rate, so the pipe neither fills (the writer
 * would wait) nor stays empty. A sleep that brought little (the writer slowed down or paused)
 * ends the pacing: the thread waits in poll(2) again. A byte waits at most one sleep
 * (PACE_MAX_NS), and only on a pipe that was fast a moment before; a slow or interactive one is
 * never paced.
 *
 * Not for capture-ring.c's floods: paced the same way (2026-12, load 17-24) the captured cat
 * ran slower (0.34-0.60 GiB/s against 0.57-1.00 without) and its CPU per GiB went up. */

#include <poll.h>
#include <stdint.h>
#include <time.h>

#define PACE_FAST_BYTES (1024 * 1024)   /* a pipe that brings this much ... */
#define PACE_FAST_NS (20 * 1000 * 1000) /* ... within this time is fast */
#define PACE_FIRST_NS (200 * 1000)
#define PACE_MIN_NS (20 * 1000)
#define PACE_MAX_NS (2 * 1000 * 1000)
#define PACE_IDLE_BYTES (16 * 1024)

struct pace {
  uint64_t sleep_ns; /* 0: not pacing, wait in poll(2) */
  uint64_t target;   /* bytes per paced round: half the pipe */
  uint64_t taken;    /* bytes taken from the pipe so far */
  uint64_t window_bytes, window_start;
};

static inline uint64_t pace_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static inline void pace_init(struct pace *pace) {
  *pace = (struct pace){.window_start = pace_now()};
}

/* After a round that took `moved` bytes. 1: the pipe just turned out fast; the caller may grow
 * it, then says its size with pace_start. */
static inline int pace_after(struct pace *pace, uint64_t moved) {
  pace->taken += moved;
  if (pace->sleep_ns > 0) {
    if (moved < PACE_IDLE_BYTES) {
      pace->sleep_ns = 0;
      pace->window_bytes = pace->taken;
      pace->window_start = pace_now();
      return 0;
    }
    uint64_t next = pace->sleep_ns * pace->target / moved;
    pace->sleep_ns = next < PACE_MIN_NS ? PACE_MIN_NS : next > PACE_MAX_NS ? PACE_MAX_NS : next;
    return 0;
  }
  if (pace->taken - pace->window_bytes < PACE_FAST_BYTES) return 0;
  uint64_t now = pace_now();
  int fast = now - pace->window_start <= PACE_FAST_NS;
  pace->window_bytes = pace->taken;
  pace->window_start = now;
  return fast;
}

static inline void pace_start(struct pace *pace, int pipe_bytes) {
  pace->target = (uint64_t)(pipe_bytes > 0 ? pipe_bytes : 64 * 1024) / 2;
  pace->sleep_ns = PACE_FIRST_NS;
}

/* Waits: fds[0] (the thread's stop eventfd) and the sleep while paced, all of fds otherwise.
 * 1 when fds[0] is readable. */
static inline int pace_wait(const struct pace *pace, struct pollfd *fds, nfds_t n) {
  int ready;
  if (pace->sleep_ns > 0) {
    struct timespec t = {.tv_sec = 0, .tv_nsec = (long)pace->sleep_ns};
    ready = ppoll(fds, 1, &t, NULL);
  } else {
    ready = poll(fds, n, -1);
  }
  return ready > 0 && fds[0].revents != 0;
}

#endif
