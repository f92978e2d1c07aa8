#ifndef SHUMA_LAUNCH_CPU_H
#define SHUMA_LAUNCH_CPU_H

#include <sched.h> /* cpu_set_t: _GNU_SOURCE, as every file of the addon defines first */
#include <sys/types.h>

/* A child started on the CPU its cloning thread leaves for the vfork wait (launch-cpu.c). */
struct launch_cpu {
  int wanted;
  /* Set by the parent: it narrowed its own CPUs to the one it runs on; `allowed` is what it had. */
  int pinned;
  pid_t cloner;
  cpu_set_t allowed;
  /* Set by the child: it gave the thread `allowed` back. */
  int restored;
};

/* The cloning thread, just before clone. */
void launch_cpu_pin(struct launch_cpu *c);
/* The child's first act: its own CPUs and its cloning thread's as they were. Async-signal-safe. */
void launch_cpu_restore_in_child(struct launch_cpu *c);
/* The cloning thread once clone has returned: its CPUs as they were, if the child could not. */
void launch_cpu_unpin(struct launch_cpu *c);

#endif
