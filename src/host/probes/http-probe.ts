import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import type { ProbeOutcome } from './probe-outcome.js';

/** Ready when a GET of `url` answers 2xx within the timeout (the body is not read). */
export function httpProbe(url: string, timeoutMs: number, signal: AbortSignal): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? httpsGet : httpGet;
    let settled = false;
    const done = (outcome: ProbeOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      resolve(outcome);
    };
    const request = get(url, { signal, headers: { 'user-agent': 'shuma-probe' } }, (response) => {
      const status = response.statusCode ?? 0;
      response.resume();
      done(status >= 200 && status < 300 ? { ok: true, detail: `${url} answered ${status}` } : { ok: false, detail: `${url} answered ${status}` });
    });
    // The whole exchange, not only the socket's idleness, is bounded.
    const timer = setTimeout(() => done({ ok: false, detail: `${url} did not answer within ${timeoutMs} ms` }), timeoutMs);
    request.once('error', (error: NodeJS.ErrnoException) =>
      done({ ok: false, detail: error.name === 'AbortError' ? 'probe abandoned: the run ended' : `${url}: ${error.code ?? error.message}` }),
    );
  });
}
