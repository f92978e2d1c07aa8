#ifndef SHUMA_EXIT_WATCH_H
#define SHUMA_EXIT_WATCH_H

#include <node_api.h>
#include <signal.h>
#include <sys/types.h>

/* One per environment: the children it watches and its flow pumps (closed with it), its spawner thread. */
struct exit_watch;
struct spawn_thread;
struct flow_pump;
struct relaunch_thread;
struct output_watch;
struct watch_set;
struct exec_stacks;
struct uv_loop_s;
struct addon_state {
  /* This process (a spawned child's parent), asked once. */
  pid_t pid;
  /* The environment's loop. */
  struct uv_loop_s *loop;
  /* The descriptors its loop watches for the spawns (watch-set.c): made with the first. */
  struct watch_set *watches;
  struct exit_watch *live;
  struct spawn_thread *thread;
  /* Stacks for spawnAsync's children, kept between spawns (exec-watch.c). */
  struct exec_stacks *exec_stacks;
  struct flow_pump *pumps;
  /* Started with the first relaunch armed (relaunch.c). */
  struct relaunch_thread *relaunches;
  /* Child outputs not yet read by a stream (output-watch.c). */
  struct output_watch *outputs;
};

/* Watches `pidfd` on the environment's loop and calls `callback(code, signo)` once the child
 * has exited and has been reaped. Owns the pidfd from then on, closing it on failure too. */
napi_status exit_watch_start(napi_env env, struct addon_state *state, pid_t pid, int pidfd, napi_value callback);

/* For relaunch.c, on the loop's thread: the watch of a child still unreaped (NULL: none); stop
 * polling while another thread reaps it (its pidfd returned, still the watch's); poll again; tell
 * the exit that other thread collected (rc and info from its waitid) — the watch ends. */
struct exit_watch *exit_watch_find(struct addon_state *state, pid_t pid);
int exit_watch_pause(struct exit_watch *w);
int exit_watch_resume(struct exit_watch *w);
void exit_watch_tell(struct exit_watch *w, int rc, const siginfo_t *info);

/* An environment going away: stop watching every child it still had. */
void exit_watch_close_all(void *state);

#endif
