#define _GNU_SOURCE
#include "js-values.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* A trailing flag of spawn(): false when left out or not a boolean (older callers pass fewer). */
napi_status optional_bool(napi_env env, const napi_value *args, size_t argc, size_t i, bool *out) {
  *out = false;
  if (argc <= i) return napi_ok;
  napi_valuetype type;
  napi_status status = napi_typeof(env, args[i], &type);
  if (status != napi_ok || type != napi_boolean) return status;
  return napi_get_value_bool(env, args[i], out);
}

char *string_of(napi_env env, napi_value value) {
  size_t len;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s && napi_get_value_string_utf8(env, value, s, len + 1, &len) != napi_ok) {
    free(s);
    return NULL;
  }
  return s;
}

/* A NULL-terminated copy of a JS array of strings; NULL on a bad element. */
char **strings_of(napi_env env, napi_value array, uint32_t *count) {
  uint32_t n;
  if (napi_get_array_length(env, array, &n) != napi_ok) return NULL;
  char **out = calloc(n + 1, sizeof *out);
  if (!out) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    if (napi_get_element(env, array, i, &item) != napi_ok || !(out[i] = string_of(env, item))) {
      for (uint32_t j = 0; j < i; j++) free(out[j]);
      free(out);
      return NULL;
    }
  }
  if (count) *count = n;
  return out;
}

void free_strings(char **strings) {
  if (!strings) return;
  for (char **s = strings; *s; s++) free(*s);
  free(strings);
}

void env_block_hold(struct env_block *block) {
  __atomic_add_fetch(&block->holders, 1, __ATOMIC_RELAXED);
}

void env_block_let_go(struct env_block *block) {
  if (__atomic_sub_fetch(&block->holders, 1, __ATOMIC_ACQ_REL) != 0) return;
  free_strings(block->strings);
  free(block);
}

static void env_block_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  env_block_let_go(data);
}

/* A tag, so that no other external (a capture ring, a pump) is ever taken for a block. */
static const napi_type_tag ENV_BLOCK_TAG = {0x7368756d61656e76ULL, 0x626c6f636b000001ULL};

napi_value env_block_make(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result = NULL;
  if (napi_get_cb_info(env, info, &argc, &arg, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, "EINVAL", "envBlock needs an array of strings");
    return NULL;
  }
  struct env_block *block = calloc(1, sizeof *block);
  if (!block || !(block->strings = strings_of(env, arg, NULL))) {
    free(block);
    napi_throw_type_error(env, "EINVAL", "envBlock needs an array of strings");
    return NULL;
  }
  block->holders = 1;
  if (napi_create_external(env, block, env_block_finalize, NULL, &result) != napi_ok ||
      napi_type_tag_object(env, result, &ENV_BLOCK_TAG) != napi_ok) {
    /* An external made but not tagged is finalized later and lets go then; none made: now. */
    if (!result) env_block_let_go(block);
    return NULL;
  }
  return result;
}

struct env_block *env_block_of(napi_env env, napi_value value) {
  napi_valuetype type;
  bool tagged = false;
  void *data = NULL;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_external) return NULL;
  if (napi_check_object_type_tag(env, value, &ENV_BLOCK_TAG, &tagged) != napi_ok || !tagged) return NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok) return NULL;
  return data;
}

/* An Error whose `code` is the errno's name (ENOENT…), with the step that failed. */
void throw_spawn_error(napi_env env, int err, const char *step, int index) {
  char message[256];
  snprintf(message, sizeof message, "%s failed: %s", step, strerror(err));
  napi_value code, msg, error, value;
  napi_create_string_utf8(env, uv_err_name(-err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_create_string_utf8(env, step, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "step", value);
  napi_create_int32(env, err, &value);
  napi_set_named_property(env, error, "errno", value);
  napi_create_int32(env, index, &value);
  napi_set_named_property(env, error, "index", value);
  napi_throw(env, error);
}
