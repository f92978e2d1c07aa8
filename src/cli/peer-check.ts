// Who is at the other end of the control socket. The socket's 0700 directory keeps other users
// out; the kernel also records each client's uid at connect(2) (SO_PEERCRED), which Node does not
// expose but the native addon reads. A client whose uid is neither the daemon's nor root is
// refused, as Docker's socket and systemd's private bus do: a directory made group- or
// world-accessible by mistake (or a socket passed on) must not hand the daemon to anyone.
import type net from 'node:net';
import { peerCredentialsReader } from '../host/peer-credentials.js';

export interface PeerCheck {
  /** Why the peers cannot be checked (the addon cannot load); null when they are. */
  readonly unavailable: string | null;
  /** Why this connection is refused; null when its peer may use the daemon. */
  refusal(conn: net.Socket): string | null;
}

export function createPeerCheck(): PeerCheck {
  const reader = peerCredentialsReader();
  if (reader.unavailable !== null) {
    return {
      unavailable: `the control socket cannot check the uid of its clients (SO_PEERCRED needs the native addon: ${reader.unavailable}): only the 0700 directory keeps other users out`,
      refusal: () => null,
    };
  }
  const own = process.getuid?.() ?? 0;
  return {
    unavailable: null,
    refusal(conn) {
      // A unix socket's libuv handle carries its descriptor (not a public API: checked).
      const fd = (conn as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
      if (typeof fd !== 'number' || fd < 0) return 'the connection has no descriptor whose peer could be checked';
      let uid: number;
      try {
        uid = reader.read(fd).uid;
      } catch (error) {
        return `its peer could not be identified (${(error as { code?: string }).code ?? (error as Error).message})`;
      }
      if (uid === own || uid === 0) return null;
      return `uid ${uid} is neither the daemon's (uid ${own}) nor root: ask the daemon's owner, or run your own daemon`;
    },
  };
}
