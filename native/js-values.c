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
