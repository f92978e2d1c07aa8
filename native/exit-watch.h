#ifndef SHUMA_EXIT_WATCH_H
#define SHUMA_EXIT_WATCH_H

#include <node_api.h>

/* One per environment: the children it watches and its flow pumps (closed with it), its spawner thread. */
struct exit_watch;
struct spawn_thread;
struct flow_pump;
struct addon_state {
  struct exit_watch *live;
  struct spawn_thread *thread;
  struct flow_pump *pumps;
};

/* Watches `pidfd` on the environment's loop and calls `callback(code, signo)` once the child
 * has exited and has been reaped. Owns the pidfd from then on, closing it on failure too. */
napi_status exit_watch_start(napi_env env, struct addon_state *state, int pidfd, napi_value callback);

/* An environment going away: stop watching every child it still had. */
void exit_watch_close_all(void *state);

#endif
