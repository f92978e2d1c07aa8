#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "child-syscall.h"
#include "exec-watch.h"
#include "exit-watch.h"
#include "js-values.h"
#include "launch.h"
#include "spawn.h"
#include "spawn-thread.h"

/* The spawn path (what the addon exports: module.c; JS values: js-values.c).
 *
 * spawn(file, argv, envp, cwd, stdio, limits, cgroupProcs, onExit[, dieWithParent[, ownSession]]) → { pid, stdin, stdout, stderr }
 * spawnAsync(same) → a promise of it, the clone done on a thread of ours (spawn-thread.c)
 *
 * clone(CLONE_VM|CLONE_VFORK) as glibc's posix_spawn does — the child borrows our memory
 * instead of copying its page tables, so the cost does not grow with the runtime — but with
 * a child function of our own, because posix_spawn can neither set rlimits nor join a cgroup.
 * The cloning thread waits only until the child has exec'd (or failed). spawnAsync's does not
 * wait at all (CLONE_VM without CLONE_VFORK, where child-syscall.h has stubs): the child runs
 * on a stack of its own and reports as before in `struct launch`, and the loop learns of the
 * exec from a close-on-exec pipe (exec-watch.c). Its thread is then woken once a spawn instead
 * of twice, does not preempt the child's exec on its CPU, and the loop is told by the pipe's
 * hang-up instead of by the thread.
 *
 * stdio: per stream, a descriptor to hand over (>= 0), STDIO_NULL for /dev/null, or
 * STDIO_PIPE for a new pipe whose parent end is returned (-1 where there is none).
 * limits: [RLIMIT_AS, RLIMIT_NOFILE, RLIMIT_CPU, RLIMIT_NPROC] values, -1 for "unchanged".
 * dieWithParent: the child gets PR_SET_PDEATHSIG(SIGKILL). It fires when the *thread* that
 * cloned it exits: spawnAsync clones on the addon's spawner thread, which lives as long as the
 * environment (the process, for the main thread's); spawn on the calling thread.
 * ownSession: the child leads a session of its own (setsid) instead of a process group in ours. */

#define CHILD_STACK_BYTES (64 * 1024)

static const int LIMIT_RESOURCES[LAUNCH_MAX_LIMITS] = {RLIMIT_AS, RLIMIT_NOFILE, RLIMIT_CPU, RLIMIT_NPROC};
#define CHECK(call)                                            \
  do {                                                         \
    if ((call) != napi_ok) {                                   \
      napi_throw_error(env, "EINVAL", "spawn: " #call " failed"); \
      goto out;                                                \
    }                                                          \
  } while (0)
static void close_if_open(int fd) {
  if (fd >= 0) close(fd);
}
/* /dev/null, opened once for the process and kept (close-on-exec; a child gets it by dup2): a
 * command's stdin. Opened and closed at every spawn it cost two syscalls on the loop each time.
 * A failed open (out of descriptors) is tried again at the next spawn. */
static int devnull_fd = -1;

static int dev_null(void) {
  int fd = __atomic_load_n(&devnull_fd, __ATOMIC_ACQUIRE);
  if (fd >= 0) return fd;
  fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0) return -1;
  int none = -1;
  /* Another environment's thread opened it first: keep that one. */
  if (!__atomic_compare_exchange_n(&devnull_fd, &none, fd, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    close(fd);
    return none;
  }
  return fd;
}

/* One spawn from its arguments to its outcome; heap-allocated so that the clone may run on
 * the addon's spawner thread (spawnAsync) while the loop goes on. */
struct job {
  struct spawn_task task; /* first: a task is its job */
  struct addon_state *state;
  /* spawnAsync's: the thread it was submitted to, and the child's stack and exec pipe. */
  struct spawn_thread *thread;
  struct exec_watch *exec;
  struct launch l;
  char *file, *cwd;
  char **argv, **envp, **cgroups;
  /* envp is this block's strings, borrowed (else the job's own copy). */
  struct env_block *env_block;
  int child_end[3], parent_end[3];
  napi_ref on_exit;
  /* The outcome: a pid and its pidfd, or an errno and the step that failed. */
  pid_t pid;
  int pidfd;
  int err;
  const char *step;
  int index;
  napi_deferred deferred;
};

static void free_job(napi_env env, struct job *job) {
  for (int i = 0; i < 3; i++) {
    close_if_open(job->child_end[i]);
    close_if_open(job->parent_end[i]);
  }
  free(job->file);
  free(job->cwd);
  free_strings(job->argv);
  if (job->env_block) env_block_let_go(job->env_block);
  else free_strings(job->envp);
  free_strings(job->cgroups);
  if (job->on_exit) napi_delete_reference(env, job->on_exit);
  if (job->exec) exec_watch_close(job->state, job->exec);
  free(job);
}

/* Converts the JS arguments and opens the pipes; NULL with an exception pending on failure. */
static struct job *prepare(napi_env env, napi_callback_info info) {
  struct addon_state *state;
  size_t argc = 10;
  napi_value args[10];
  if (napi_get_cb_info(env, info, &argc, args, NULL, (void **)&state) != napi_ok) return NULL;
  if (argc < 8) {
    napi_throw_type_error(env, "EINVAL", "spawn needs 8 arguments");
    return NULL;
  }
  struct job *job = calloc(1, sizeof *job);
  if (!job) {
    napi_throw_error(env, "ENOMEM", "spawn: out of memory");
    return NULL;
  }
  job->state = state;
  job->pidfd = -1;
  for (int i = 0; i < 3; i++) job->child_end[i] = job->parent_end[i] = -1;
  struct launch *l = &job->l;

  uint32_t ncgroups = 0;
  job->file = string_of(env, args[0]);
  job->argv = strings_of(env, args[1], NULL);
  /* An environment made into a block once (envBlock) is not converted again at each spawn. */
  if ((job->env_block = env_block_of(env, args[2]))) {
    env_block_hold(job->env_block);
    job->envp = job->env_block->strings;
  } else {
    job->envp = strings_of(env, args[2], NULL);
  }
  job->cwd = string_of(env, args[3]);
  job->cgroups = strings_of(env, args[6], &ncgroups);
  if (!job->file || !job->argv || !job->envp || !job->cwd || !job->cgroups) {
    napi_throw_type_error(env, "EINVAL", "spawn: file, argv, envp, cwd and cgroupProcs must be strings");
    goto fail;
  }
  napi_valuetype type;
  if (napi_typeof(env, args[7], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, "EINVAL", "spawn: onExit must be a function");
    goto fail;
  }
  CHECK(napi_create_reference(env, args[7], 1, &job->on_exit));
  bool die_with_parent, own_session;
  CHECK(optional_bool(env, args, argc, 8, &die_with_parent));
  CHECK(optional_bool(env, args, argc, 9, &own_session));
  l->die_with_parent = die_with_parent;
  l->own_session = own_session;
  l->parent = state->pid;

  for (uint32_t i = 0; i < 3; i++) {
    napi_value item;
    int32_t mode;
    CHECK(napi_get_element(env, args[4], i, &item));
    CHECK(napi_get_value_int32(env, item, &mode));
    if (mode >= 0) {
      l->stdio[i] = mode;
    } else if (mode == STDIO_NULL) {
      int null_fd = dev_null();
      if (null_fd < 0) {
        throw_spawn_error(env, errno, "open /dev/null", (int)i);
        goto fail;
      }
      l->stdio[i] = null_fd;
    } else {
      /* O_CLOEXEC: a fork by anyone else in this process (child_process) must not inherit an end. */
      int p[2];
      if (pipe2(p, O_CLOEXEC) < 0) {
        throw_spawn_error(env, errno, "pipe", (int)i);
        goto fail;
      }
      job->child_end[i] = i == 0 ? p[0] : p[1];
      job->parent_end[i] = i == 0 ? p[1] : p[0];
      l->stdio[i] = job->child_end[i];
    }
  }

  for (uint32_t i = 0; i < LAUNCH_MAX_LIMITS; i++) {
    napi_value item;
    int64_t value;
    CHECK(napi_get_element(env, args[5], i, &item));
    CHECK(napi_get_value_int64(env, item, &value));
    if (value < 0) continue;
    l->limit_resource[l->nlimits] = LIMIT_RESOURCES[i];
    l->limit_value[l->nlimits] = (rlim_t)value;
    l->nlimits++;
  }

  l->file = job->file;
  l->argv = job->argv;
  l->envp = job->envp;
  l->cwd = job->cwd;
  l->ncgroups = (int)ncgroups;
  l->cgroup_procs = job->cgroups;
  return job;

out:
fail:
  free_job(env, job);
  return NULL;
}

/* The children's stack, one per cloning thread, kept for the thread's life: a clone returns only
 * once its child has exec'd or exited, so the next child may have it. Mapped and unmapped per
 * spawn it cost page faults in every child, and each munmap a TLB shootdown on every core the
 * runtime's threads run on. Unmapped when the thread ends (the key's destructor). */
static pthread_key_t stack_key;
static pthread_once_t stack_key_once = PTHREAD_ONCE_INIT;

static void unmap_stack(void *stack) {
  munmap(stack, CHILD_STACK_BYTES);
}

static void make_stack_key(void) {
  (void)pthread_key_create(&stack_key, unmap_stack);
}

static void *child_stack(void) {
  pthread_once(&stack_key_once, make_stack_key);
  void *stack = pthread_getspecific(stack_key);
  if (stack) return stack;
  stack = mmap(NULL, CHILD_STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return NULL;
  if (pthread_setspecific(stack_key, stack) != 0) {
    munmap(stack, CHILD_STACK_BYTES);
    return NULL;
  }
  return stack;
}

/* spawnAsync's clone: the thread goes on at once, where the child's system calls leave its errno
 * alone (child-syscall.h); elsewhere it waits for the exec, as the other paths do. */
#define ASYNC_CLONE_FLAGS (CLONE_VM | (CHILD_RUNS_BESIDE_PARENT ? 0 : CLONE_VFORK) | CLONE_PIDFD | SIGCHLD)

/* The clone: no N-API here, it may run off the loop's thread. */
static void clone_child(struct job *job, void *stack_top, int flags) {
  /* Every signal blocked across clone: a handler of ours must never run in the child, on our
   * memory, before the child has reset the dispositions. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pidfd = -1;
  job->l.default_slice = spawn_thread_short_slice;
  launch_cpu_pin(&job->l.cpu);
  pid_t pid = clone(launch_child, stack_top, flags, &job->l, &pidfd);
  int clone_errno = errno;
  launch_cpu_unpin(&job->l.cpu);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (pid < 0) {
    job->err = clone_errno;
    job->step = "clone";
    return;
  }
  job->pid = pid;
  job->pidfd = pidfd;
}

/* Once the child has exec'd or exited: one that failed is reaped (no zombie is left) and its
 * step and errno kept. */
static void judge(struct job *job) {
  if (job->step || job->l.step == STEP_NONE) return;
  while (waitpid(job->pid, NULL, 0) < 0 && errno == EINTR) {
  }
  close(job->pidfd);
  job->pidfd = -1;
  job->err = job->l.err;
  job->step = launch_step_name(job->l.step);
  job->index = job->l.index;
}

/* clone + wait for the exec (CLONE_VFORK), on this thread's one child stack. */
static void launch(struct job *job) {
  void *stack = child_stack();
  if (!stack) {
    job->err = errno ? errno : ENOMEM;
    job->step = "mmap";
    return;
  }
  clone_child(job, (char *)stack + CHILD_STACK_BYTES, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD);
  judge(job);
}

/* The outcome as JS: { pid, stdin, stdout, stderr }, or NULL with an exception pending. */
static napi_value finish(napi_env env, struct job *job) {
  napi_value result = NULL, callback, value;
  if (job->step) {
    throw_spawn_error(env, job->err, job->step, job->index);
    goto out;
  }
  CHECK(napi_get_reference_value(env, job->on_exit, &callback));
  if (exit_watch_start(env, job->state, job->pid, job->pidfd, callback) != napi_ok) {
    /* Without a watch nobody would ever reap it: end it here. */
    kill(job->pid, SIGKILL);
    while (waitpid(job->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    throw_spawn_error(env, EIO, "watch exit", 0);
    goto out;
  }
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_int32(env, job->pid, &value));
  CHECK(napi_set_named_property(env, result, "pid", value));
  const char *names[3] = {"stdin", "stdout", "stderr"};
  for (int i = 0; i < 3; i++) {
    CHECK(napi_create_int32(env, job->parent_end[i], &value));
    CHECK(napi_set_named_property(env, result, names[i], value));
    job->parent_end[i] = -1; /* the caller's now */
  }
out:
  return result;
}

/* The calling thread waits for the exec (typically ~0.2 ms, whatever the runtime's size). */
napi_value addon_spawn(napi_env env, napi_callback_info info) {
  struct job *job = prepare(env, info);
  if (!job) return NULL;
  launch(job);
  napi_value result = finish(env, job);
  free_job(env, job);
  return result;
}

/* On the spawner thread: the clone, and the job is the loop's again (exec_watch_let_go). */
static void run_task(struct spawn_task *task) {
  struct job *job = (struct job *)task;
  clone_child(job, exec_watch_stack_top(job->exec), ASYNC_CLONE_FLAGS);
  exec_watch_let_go(job->exec);
}

/* On the loop: the child's exec pipe hung up (or the clone failed). */
static void on_execd(void *arg) {
  struct job *job = arg;
  spawn_thread_done(job->thread, &job->task);
}

/* A child nobody was told of and nobody ever will be: it, and what it started (it leads a group of
 * its own), end here. Only while it is unreaped: its pid and its group name nobody else then. */
static void kill_untold(pid_t pid) {
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
}

static void settle_task(napi_env env, struct spawn_task *task) {
  struct job *job = (struct job *)task;
  judge(job);
  napi_value result = finish(env, job), error;
  if (result) {
    /* Refused when JavaScript can no longer run (a worker's teardown runs the loop once more
     * before the cleanup hook): the promise would never be seen. Its exit watch reaps it. */
    if (napi_resolve_deferred(env, job->deferred, result) != napi_ok) kill_untold(job->pid);
  } else {
    napi_get_and_clear_last_exception(env, &error);
    napi_reject_deferred(env, job->deferred, error);
  }
  free_job(env, job);
}

/* The spawner thread stopped before this task was settled (spawn_thread_stop). */
static void drop_task(napi_env env, struct spawn_task *task, int ran) {
  struct job *job = (struct job *)task;
  if (ran) {
    exec_watch_wait(job->exec);
    judge(job);
  }
  if (ran && !job->step) {
    kill_untold(job->pid);
    while (waitpid(job->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    close(job->pidfd);
  }
  free_job(env, job);
}

/* The same, with the clone on the addon's spawner thread: the loop is not held even while
 * the child execs; a promise of the outcome. */
napi_value addon_spawn_async(napi_env env, napi_callback_info info) {
  struct job *job = prepare(env, info);
  if (!job) return NULL;
  struct addon_state *state = job->state;
  if (!state->thread && !(state->thread = spawn_thread_start(env))) {
    throw_spawn_error(env, errno ? errno : EAGAIN, "start the spawner thread", 0);
    free_job(env, job);
    return NULL;
  }
  if (!(job->exec = exec_watch_open(state, on_execd, job))) {
    throw_spawn_error(env, errno ? errno : EMFILE, "exec pipe", 0);
    free_job(env, job);
    return NULL;
  }
  job->l.exec_pipe = exec_watch_write_end(job->exec);
  job->thread = state->thread;
  napi_value promise;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    free_job(env, job);
    return NULL;
  }
  job->task.run = run_task;
  job->task.done = settle_task;
  job->task.drop = drop_task;
  spawn_thread_submit(state->thread, &job->task);
  return promise;
}

/* The same steps for relaunch.c (a relaunch prepared ahead, cloned on its thread at an exit). */
struct job *spawn_job_prepare(napi_env env, napi_callback_info info) {
  return prepare(env, info);
}

pid_t spawn_job_launch(struct job *job) {
  job->l.cpu.wanted = 1;
  launch(job);
  return job->step ? 0 : job->pid;
}

napi_value spawn_job_finish(napi_env env, struct job *job) {
  return finish(env, job);
}

void spawn_job_free(napi_env env, struct job *job) {
  free_job(env, job);
}
