#ifndef SHUMA_FLOW_FANOUT_CORE_H
#define SHUMA_FLOW_FANOUT_CORE_H

/* Inside a flow fanout (flow-fanout.c: its thread; flow-fanout-calls.c: what JS calls). */

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "thread-end.h"

#define CHUNK_BYTES (256 * 1024)
#define PIPE_BYTES (1024 * 1024)
#define MAX_QUEUED (4 * 1024 * 1024)
/* Asked of a reader's socket (the kernel doubles it, and caps it at net.core.wmem_max): a
 * reader takes up to this much per read, instead of the default ~200 KiB, so it keeps up with
 * a fast edge with fewer wake-ups (its own and this thread's). */
#define SOCKET_BUFFER_BYTES (1024 * 1024)
#define MAX_READERS 64

struct reader {
  int fd;
  int32_t id;
  char *queue; /* bytes its socket did not take yet, from `head` */
  size_t head, len, cap;
};

struct fanout {
  struct thread_end end;
  int refs; /* the JS handle, the async handle */
  pthread_t thread;
  int thread_running;
  int wake_fd;
  pthread_mutex_t lock;
  /* Under lock from here. */
  int tap_r, tap_w; /* tap_w: the fanout's own copy, kept until fanoutClose */
  int closing;      /* fanoutClose: the end comes with the pipe's EOF */
  int stopping;     /* the environment goes, or the handle was collected: stop now */
  int ended;
  uint64_t end_by_ns; /* set at the pipe's EOF: the readers' grace */
  struct reader *readers;
  int nreaders, cap_readers;
  int32_t next_id;
  uint32_t dropped; /* readers dropped for falling behind */
  uint64_t delivered; /* bytes taken from the pipe */
  char *buf;
  int no_splice; /* the readers' sockets refused splice(2): copies only */
  int closed;    /* close_all done (on the loop) */
};

/* The fanout's thread: the pipe to every reader's socket until the end or `stopping`. */
void *fanout_thread_main(void *arg);

/* The reader leaves the set. `how`: shutdown(2) first (-1: none, the reader is gone or JS let go). */
void fanout_forget_reader(struct fanout *f, int i, int how);

#endif
