#ifndef SHUMA_FLOW_FANOUT_H
#define SHUMA_FLOW_FANOUT_H

#include <node_api.h>

/* A tapped edge's flow-socket readers, fed on a thread (flow-fanout.c); its JS side is
 * src/host/flows/native-fanout.ts. Adds fanoutOpen, fanoutTapFd, fanoutAdd, fanoutRemove,
 * fanoutDropped, fanoutClose and fanoutThreads to `exports`. */
void flow_fanout_register(napi_env env, napi_value exports);

#endif
