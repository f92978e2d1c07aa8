#ifndef SHUMA_SPAWN_H
#define SHUMA_SPAWN_H

#include <node_api.h>

/* The spawn path (addon.c): spawn and spawnAsync, their `state` the environment's addon_state. */

/* stdio modes of spawn() besides a descriptor to hand over. */
#define STDIO_NULL (-1)
#define STDIO_PIPE (-2)

napi_value addon_spawn(napi_env env, napi_callback_info info);
napi_value addon_spawn_async(napi_env env, napi_callback_info info);

#endif
