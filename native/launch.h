#ifndef SHUMA_LAUNCH_H
#define SHUMA_LAUNCH_H

#include <sys/resource.h>
#include <sys/types.h>

#include "launch-cpu.h"

/* Everything the child needs between clone and exec, built by the parent beforehand: the
 * child shares the parent's memory (CLONE_VM) and must not allocate, so it only reads this
 * and, on failure, writes `err`/`step`/`index` back for the parent to report. Nobody else
 * touches it until the child has exec'd or exited. */

enum launch_step {
  STEP_NONE = 0,
  STEP_GROUP,
  STEP_SESSION,
  STEP_PDEATHSIG,
  STEP_STDIO,
  STEP_CLOSE_FDS,
  STEP_CHDIR,
  STEP_CGROUP,
  STEP_RLIMIT,
  STEP_EXEC,
};

#define LAUNCH_MAX_LIMITS 4

struct launch {
  const char *file;
  char **argv;
  char **envp;
  const char *cwd;
  /* The descriptors that become the child's 0, 1 and 2. */
  int stdio[3];
  int nlimits;
  int limit_resource[LAUNCH_MAX_LIMITS];
  rlim_t limit_value[LAUNCH_MAX_LIMITS];
  int ncgroups;
  char **cgroup_procs;
  /* Non-zero: the child is SIGKILLed when the thread that cloned it exits (PR_SET_PDEATHSIG),
   * so it cannot outlive a runtime that dies. `parent` is the runtime's pid, to tell whether
   * the runtime died before the request was made. */
  int die_with_parent;
  pid_t parent;
  /* Non-zero: the child leads a session of its own (setsid), hence a scheduling autogroup of its
   * own; zero: a process group in the runtime's session (launch-child.c says when each pays). */
  int own_session;
  /* Non-zero: the child inherited its cloning thread's short slice; the default is set back before the exec. */
  int default_slice;
  /* > 2: the write end of a close-on-exec pipe, the child's only descriptor above 2 until its
   * exec, so that the pipe's reader sees it hang up at the exec (or the child's exit); 0: none. */
  int exec_pipe;
  /* Where the child starts (a relaunch's: launch-cpu.c). */
  struct launch_cpu cpu;
  /* Written by the child on failure. */
  int err;
  int step;
  int index;
};

/* The child's entry point for clone(): returns only by _exit. */
int launch_child(void *arg);

const char *launch_step_name(int step);

#endif
