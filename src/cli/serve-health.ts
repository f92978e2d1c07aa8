// The daemon's side of `shuma health`: the runtime's counts, with where and since when it serves.
import type { Runtime } from '../host/runtime.js';
import type { HealthResult } from '../protocol/control-results.js';
import type { PeerCheck } from './peer-check.js';

export interface DaemonInfo {
  socket: string;
  stateDir: string;
  startedAt: number;
}

export async function health(rt: Runtime, info: DaemonInfo, peers: PeerCheck): Promise<HealthResult> {
  const counts = await rt.health();
  return {
    pid: process.pid,
    socket: info.socket,
    stateDir: info.stateDir,
    startedAt: info.startedAt,
    uptimeMs: Date.now() - info.startedAt,
    ...counts,
    peerCheck: peers.unavailable === null,
    warnings: [...rt.warnings, ...(peers.unavailable === null ? [] : [peers.unavailable])],
    inspectorUrl: rt.inspectorUrl,
  };
}
