#ifndef SHUMA_RELAUNCH_H
#define SHUMA_RELAUNCH_H

#include <node_api.h>

struct addon_state;

/* armRelaunch / disarmRelaunch (relaunch.c): the next run of a standing order, started on a
 * thread of ours at its predecessor's exit. `state` is the environment's addon_state. */
napi_value relaunch_arm(napi_env env, napi_callback_info info);
napi_value relaunch_disarm(napi_env env, napi_callback_info info);

/* The environment is going away: the thread ends, what was armed is dropped. */
void relaunch_close_all(struct addon_state *state);

#endif
