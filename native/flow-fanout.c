#define _GNU_SOURCE
#include "flow-fanout-core.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A tapped edge's flow-socket readers, fed on a thread of the addon's (the JS side is
 * src/host/flows/native-fanout.ts). The edge's pumps (flow-pump.c, one per attempt of the
 * pipeline) tee its bytes into the fanout's pipe; this thread hands them to every reader's
 * socket. Before, the runtime's loop read that pipe and wrote each chunk to each socket: every
 * byte a reader saw went through JavaScript on the thread that runs every actor.
 *
 * - One reader with nothing queued: splice(2) from the pipe into its socket (no copy here).
 *   Otherwise a chunk is read once and written to each reader.
 * - A slow reader never holds the pipe: what its socket does not take is queued for it here,
 *   up to MAX_QUEUED bytes (as the JS channel's READER_MAX_BUFFERED); beyond, the reader is
 *   dropped: its connection is shut down, so it sees the end after what it already has, and
 *   knows it missed data (a hole in the stream would go unseen). The pipe is always read.
 * - Every byte in the pipe's order: one pipe for the edge's whole life, whichever attempt's
 *   pump wrote into it, and a reader's queue is written before anything newer.
 * - The end (fanoutClose): once every pump's copy of the pipe's write end is closed, what is
 *   left is read and handed on, each reader gets up to END_GRACE_MS to take its queue, then
 *   its connection is shut for writing (it reads to the end) and JS is told.
 *
 * The reader's socket stays the runtime's too: JS keeps reading it (a reader sends nothing; its
 * EOF says it left) and the fanout writes on a duplicate of its descriptor. */

#define SPLICE_BYTES (1024 * 1024)
#define END_GRACE_MS 1000
#define STEPS_PER_WAKE 64

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void fanout_forget_reader(struct fanout *f, int i, int how) {
  struct reader *r = &f->readers[i];
  if (how >= 0) shutdown(r->fd, how);
  close(r->fd);
  free(r->queue);
  f->readers[i] = f->readers[--f->nreaders];
}

/* Queues bytes a reader's socket did not take; 0 when that would pass MAX_QUEUED. */
static int enqueue(struct reader *r, const char *bytes, size_t len) {
  if (r->len + len > MAX_QUEUED) return 0;
  if (r->head > 0 && r->head + r->len + len > r->cap) {
    memmove(r->queue, r->queue + r->head, r->len);
    r->head = 0;
  }
  if (r->len + len > r->cap) {
    size_t cap = r->cap ? r->cap : CHUNK_BYTES;
    while (cap < r->len + len) cap *= 2;
    char *grown = realloc(r->queue, cap);
    if (!grown) return 0;
    r->queue = grown;
    r->cap = cap;
  }
  memcpy(r->queue + r->head + r->len, bytes, len);
  r->len += len;
  return 1;
}

/* Writes what the reader's queue holds; 1 when it is empty, 0 when its socket is full, -1 gone. */
static int flush(struct reader *r) {
  while (r->len > 0) {
    ssize_t n = send(r->fd, r->queue + r->head, r->len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      r->head += (size_t)n;
      r->len -= (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    return -1;
  }
  r->head = 0;
  if (r->cap > CHUNK_BYTES) {
    /* A reader that caught up gives back what its burst took. */
    free(r->queue);
    r->queue = NULL;
    r->cap = 0;
  }
  return 1;
}

/* A chunk to a reader: written now as far as its socket takes it, queued after. 0: dropped. */
static int hand(struct fanout *f, int i, const char *bytes, size_t len) {
  struct reader *r = &f->readers[i];
  size_t off = 0;
  /* What it took since the last chunk is refilled first: a wake-up that reads many chunks
   * must not leave a reader's socket empty while its queue grows. */
  int flushed = r->len > 0 ? flush(r) : 1;
  if (flushed < 0) {
    fanout_forget_reader(f, i, -1);
    return 0;
  }
  if (flushed) {
    while (off < len) {
      ssize_t n = send(r->fd, bytes + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) off += (size_t)n;
      else if (n < 0 && errno == EINTR) continue;
      else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      else {
        fanout_forget_reader(f, i, -1);
        return 0;
      }
    }
  }
  if (off < len && !enqueue(r, bytes + off, len - off)) {
    f->dropped++;
    fanout_forget_reader(f, i, SHUT_RDWR);
    return 0;
  }
  return 1;
}

enum step { STEP_AGAIN, STEP_WAIT, STEP_EOF };

/* Moves what waits in the pipe to the readers (one step). */
static enum step step(struct fanout *f) {
  if (f->nreaders == 1 && f->readers[0].len == 0 && !f->no_splice) {
    /* The common case, one reader keeping up: its socket takes the pages themselves. */
    ssize_t n = splice(f->tap_r, NULL, f->readers[0].fd, NULL, SPLICE_BYTES, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
    if (n > 0) {
      f->delivered += (uint64_t)n;
      return STEP_AGAIN;
    }
    if (n == 0) return STEP_EOF;
    if (errno == EINTR) return STEP_AGAIN;
    if (errno == EPIPE || errno == ECONNRESET) {
      fanout_forget_reader(f, 0, -1); /* the reader is gone */
      return STEP_AGAIN;
    }
    if (errno != EAGAIN) {
      f->no_splice = 1; /* not a socket splice(2) can write to: the copy below */
      return STEP_AGAIN;
    }
    int avail = 0;
    if (ioctl(f->tap_r, FIONREAD, &avail) == 0 && avail == 0) return STEP_WAIT;
    /* Bytes wait but the socket is full: they are read and queued below. */
  }
  ssize_t n = read(f->tap_r, f->buf, CHUNK_BYTES);
  if (n == 0) return STEP_EOF;
  if (n < 0) {
    if (errno == EINTR) return STEP_AGAIN;
    return errno == EAGAIN ? STEP_WAIT : STEP_EOF;
  }
  f->delivered += (uint64_t)n;
  for (int i = f->nreaders - 1; i >= 0; i--) hand(f, i, f->buf, (size_t)n);
  return STEP_AGAIN;
}

/* Every queue written as far as its socket takes it; readers that left are forgotten. */
static int flush_all(struct fanout *f) {
  int waiting = 0;
  for (int i = f->nreaders - 1; i >= 0; i--) {
    int r = flush(&f->readers[i]);
    if (r < 0) fanout_forget_reader(f, i, -1);
    else if (r == 0) waiting = 1;
  }
  return waiting;
}

void *fanout_thread_main(void *arg) {
  struct fanout *f = arg;
  struct pollfd fds[2 + 64];
  pthread_mutex_lock(&f->lock);
  for (;;) {
    if (f->stopping) break;
    int waiting = flush_all(f);
    for (int steps = 0; f->tap_r >= 0 && steps < STEPS_PER_WAKE; steps++) {
      enum step r = step(f);
      if (r == STEP_WAIT) break;
      if (r == STEP_EOF) {
        close(f->tap_r);
        f->tap_r = -1;
        f->end_by_ns = now_ns() + (uint64_t)END_GRACE_MS * 1000000u;
      }
    }
    waiting = flush_all(f) || waiting;
    if (f->tap_r < 0) {
      if (!waiting || now_ns() >= f->end_by_ns) {
        /* The end: each reader reads what it has, then its end of the stream. */
        while (f->nreaders > 0) fanout_forget_reader(f, f->nreaders - 1, SHUT_WR);
        f->ended = 1;
        break;
      }
    }
    int n = 0;
    fds[n++] = (struct pollfd){.fd = f->wake_fd, .events = POLLIN};
    if (f->tap_r >= 0) fds[n++] = (struct pollfd){.fd = f->tap_r, .events = POLLIN};
    for (int i = 0; i < f->nreaders && n < (int)(sizeof fds / sizeof fds[0]); i++)
      if (f->readers[i].len > 0) fds[n++] = (struct pollfd){.fd = f->readers[i].fd, .events = POLLOUT};
    int timeout = -1;
    if (f->tap_r < 0) {
      uint64_t now = now_ns();
      timeout = now >= f->end_by_ns ? 0 : (int)((f->end_by_ns - now) / 1000000u) + 1;
    }
    pthread_mutex_unlock(&f->lock);
    if (poll(fds, (nfds_t)n, timeout) > 0 && fds[0].revents) wake_consume(f->wake_fd);
    pthread_mutex_lock(&f->lock);
  }
  int ended = f->ended;
  pthread_mutex_unlock(&f->lock);
  if (ended) uv_async_send(&f->end.async);
  return NULL;
}

