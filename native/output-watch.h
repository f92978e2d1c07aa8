#ifndef SHUMA_OUTPUT_WATCH_H
#define SHUMA_OUTPUT_WATCH_H

#include <node_api.h>

/* outputWatch(fd, onReady) → a handle; outputUnwatch(handle) → whether it was still watching.
 * See output-watch.c. */
napi_value output_watch_start(napi_env env, napi_callback_info info);
napi_value output_watch_stop(napi_env env, napi_callback_info info);

/* An environment going away: stop every watch it still had (no callback). */
void output_watch_close_all(void *state);

#endif
