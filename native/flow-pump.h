#ifndef SHUMA_FLOW_PUMP_H
#define SHUMA_FLOW_PUMP_H

#include <node_api.h>

#include "exit-watch.h"

/* The edge pumps of tapped pipelines (flow-pump.c); their JS side is src/host/flows/native-pump.ts. */
struct flow_pump;

napi_value flow_pump_start(napi_env env, napi_callback_info info);
napi_value flow_pump_bytes(napi_env env, napi_callback_info info);
napi_value flow_pump_tap(napi_env env, napi_callback_info info);
napi_value flow_pump_destroy(napi_env env, napi_callback_info info);
napi_value flow_pipe(napi_env env, napi_callback_info info);
napi_value flow_grow_pipe(napi_env env, napi_callback_info info);
napi_value flow_pump_threads(napi_env env, napi_callback_info info);

/* The environment is going away: close every pump it still had. */
void flow_pump_close_all(struct addon_state *state);

#endif
