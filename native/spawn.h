#ifndef SHUMA_SPAWN_H
#define SHUMA_SPAWN_H

#include <node_api.h>
#include <sys/types.h>

/* The spawn path (addon.c): spawn and spawnAsync, their `state` the environment's addon_state. */

/* stdio modes of spawn() besides a descriptor to hand over. */
#define STDIO_NULL (-1)
#define STDIO_PIPE (-2)

napi_value addon_spawn(napi_env env, napi_callback_info info);
napi_value addon_spawn_async(napi_env env, napi_callback_info info);

/* One spawn's steps, for a relaunch armed ahead (relaunch.c): prepare from spawn's arguments
 * (NULL, an exception pending, on failure) on the loop; launch (clone, wait for the exec) on any
 * thread; finish (the exit watched; { pid, stdin, stdout, stderr } or NULL, an exception
 * pending) and free on the loop. */
struct job;
struct job *spawn_job_prepare(napi_env env, napi_callback_info info);
pid_t spawn_job_launch(struct job *job); /* the child's pid, 0 when it failed (finish says why) */
napi_value spawn_job_finish(napi_env env, struct job *job);
void spawn_job_free(napi_env env, struct job *job);

#endif
