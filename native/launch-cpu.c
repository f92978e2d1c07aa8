#define _GNU_SOURCE
#include "launch-cpu.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A relaunch's child starts on the CPU its cloning thread runs on. A new task is placed by the
 * kernel's fork balancing, which sees that CPU busy (the thread is still on it, about to block
 * in the vfork wait) and often picks the other one: traced (s30, 300 restarts, a second core
 * busy with other work), a third of the children were placed there and waited for it, fork →
 * first run median 0.046 ms but mean 0.76 and p90 2.7, against 0.007 / 0.095 / 0.023 for those
 * placed where the thread blocks. So the thread narrows its own CPUs to its current one for the
 * clone (the child inherits them, so it is placed there), and the child, as its first act, gives
 * itself and the thread the CPUs they had: the program runs with the mask it would have
 * inherited, and the thread, woken at the exec, may run anywhere, as before. A mask changed
 * from outside in the ~0.1 ms between the two is overwritten (taskset on a live runtime). Not
 * done where the thread may run on one CPU only. */

static __thread pid_t own_tid;

/* Every CPU: what the kernel narrows to the cpuset's, for when `allowed` lost them all meanwhile. */
static const unsigned char EVERY_CPU[sizeof(cpu_set_t)] = {[0 ... sizeof(cpu_set_t) - 1] = 0xff};

static int give_back(pid_t tid, const cpu_set_t *allowed) {
  if (syscall(SYS_sched_setaffinity, tid, sizeof *allowed, allowed) == 0) return 0;
  return (int)syscall(SYS_sched_setaffinity, tid, sizeof EVERY_CPU, EVERY_CPU);
}

void launch_cpu_pin(struct launch_cpu *c) {
  c->pinned = 0;
  c->restored = 0;
  if (!c->wanted || sched_getaffinity(0, sizeof c->allowed, &c->allowed) != 0) return;
  int cpu = sched_getcpu();
  if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &c->allowed) || CPU_COUNT(&c->allowed) < 2) return;
  cpu_set_t here;
  CPU_ZERO(&here);
  CPU_SET(cpu, &here);
  if (sched_setaffinity(0, sizeof here, &here) != 0) return;
  if (!own_tid) own_tid = (pid_t)syscall(SYS_gettid);
  c->cloner = own_tid;
  c->pinned = 1;
}

void launch_cpu_restore_in_child(struct launch_cpu *c) {
  if (!c->pinned) return;
  (void)give_back(0, &c->allowed);
  if (give_back(c->cloner, &c->allowed) == 0) c->restored = 1;
}

void launch_cpu_unpin(struct launch_cpu *c) {
  if (c->pinned && !c->restored) (void)give_back(0, &c->allowed);
  c->pinned = 0;
}
