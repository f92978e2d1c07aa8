import { connect } from 'node:net';
import type { ProbeOutcome } from './probe-outcome.js';

/** Ready when 127.0.0.1:`port` accepts a connection (closed at once, nothing sent). */
export function tcpProbe(port: number, timeoutMs: number, signal: AbortSignal): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let settled = false;
    const done = (outcome: ProbeOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', abort);
      socket.destroy();
      resolve(outcome);
    };
    const abort = () => done({ ok: false, detail: 'probe abandoned: the run ended' });
    const timer = setTimeout(() => done({ ok: false, detail: `127.0.0.1:${port} did not accept within ${timeoutMs} ms` }), timeoutMs);
    signal.addEventListener('abort', abort);
    socket.once('connect', () => done({ ok: true, detail: `127.0.0.1:${port} accepted` }));
    socket.once('error', (error: NodeJS.ErrnoException) => done({ ok: false, detail: `127.0.0.1:${port}: ${error.code ?? error.message}` }));
  });
}
