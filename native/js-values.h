#ifndef SHUMA_JS_VALUES_H
#define SHUMA_JS_VALUES_H

#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>

/* JS arguments as C values, and errors as JS ones, for the addon's calls (addon.c, module.c). */

/* A trailing flag: false when left out or not a boolean (older callers pass fewer). */
napi_status optional_bool(napi_env env, const napi_value *args, size_t argc, size_t i, bool *out);

/* A malloc'ed copy of a JS string; NULL when it is none. */
char *string_of(napi_env env, napi_value value);

/* A NULL-terminated copy of a JS array of strings; NULL on a bad element. */
char **strings_of(napi_env env, napi_value array, uint32_t *count);
void free_strings(char **strings);

/* An environment's `K=V` strings converted once, shared by every spawn given it (envBlock):
 * freed when the last of its holders (its JS handle, a spawn under way) lets go. */
struct env_block {
  int holders; /* atomic: a spawn may let go off the loop's thread */
  char **strings;
};

/* envBlock(envp) → an opaque handle for spawn's envp argument, in place of the array. */
napi_value env_block_make(napi_env env, napi_callback_info info);

/* The block `value` is, or NULL when it is none (an array of strings, then). */
struct env_block *env_block_of(napi_env env, napi_value value);
void env_block_hold(struct env_block *block);
void env_block_let_go(struct env_block *block);

/* Throws an Error whose `code` is the errno's name (ENOENT…), with the step that failed. */
void throw_spawn_error(napi_env env, int err, const char *step, int index);

#endif
