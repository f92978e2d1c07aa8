#ifndef SHUMA_CAPTURE_RING_H
#define SHUMA_CAPTURE_RING_H

#include <node_api.h>

/* A flooding writer's captured output read on a thread of the addon's (capture-ring.c);
 * its JS side is src/host/spawn/flood-capture.ts. */
napi_value capture_ring_start(napi_env env, napi_callback_info info);
napi_value capture_ring_drain(napi_env env, napi_callback_info info);
napi_value capture_ring_stop(napi_env env, napi_callback_info info);

#endif
