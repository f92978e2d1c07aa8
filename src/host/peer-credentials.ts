import { loadSpawnerAddon } from './spawn/native-addon.js';

// The peer of a connected unix socket (SO_PEERCRED), as the kernel recorded it at connect(2):
// Node does not expose it; the native addon reads it. For the daemon's control socket.

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** A reader of peers' credentials, or why there is none (the addon cannot load). */
export type PeerCredentialsReader = { read(fd: number): PeerCredentials; unavailable: null } | { unavailable: string };

export function peerCredentialsReader(): PeerCredentialsReader {
  try {
    const addon = loadSpawnerAddon();
    return { read: (fd) => addon.peerCredentials(fd), unavailable: null };
  } catch (error) {
    return { unavailable: (error as Error).message };
  }
}
