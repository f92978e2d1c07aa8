import { isIPv4 } from 'node:net';
import { ShumaError } from '../protocol/errors.js';

// The inspector's options (RuntimeOptions.inspector) and its limits, checked before anything listens.

export interface InspectorOptions {
  /** TCP port; 0 picks any free one (the runtime's `inspectorUrl` says which). */
  port: number;
  /** A loopback address only: 127.0.0.1 (default), another 127.x.y.z, ::1 or localhost. */
  host?: string;
}

export interface InspectorLimits {
  /** Records kept for pages that connect later (and for resyncs). */
  ringRecords: number;
  /** Ended actors kept in the list after they ended. */
  keepEndedActors: number;
  /** A client whose socket holds more than this many unsent bytes is sent nothing more until it drains. */
  highWaterBytes: number;
  /** …and is sent the whole state again once it holds no more than this. */
  lowWaterBytes: number;
  /** Records waiting for the next batch; past this the batch is dropped and every page resyncs. */
  maxPendingRecords: number;
  /** How long records wait to be sent together. */
  flushMs: number;
  /** Clock ticks, stats and why() refreshes for the selected actor. */
  tickMs: number;
  maxClients: number;
}

export const DEFAULT_INSPECTOR_LIMITS: InspectorLimits = {
  ringRecords: 1000,
  keepEndedActors: 200,
  highWaterBytes: 1024 * 1024,
  lowWaterBytes: 64 * 1024,
  maxPendingRecords: 5000,
  flushMs: 30,
  tickMs: 1000,
  maxClients: 16,
};

/** Whether `host` names this machine's loopback interface. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true;
  return isIPv4(host) && host.startsWith('127.');
}

/** Checks `RuntimeOptions.inspector`; the address to listen on: loopback only. */
export function checkInspectorOptions(value: unknown): { port: number; host: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ShumaError('INVALID_ARGUMENT', 'options.inspector must be an object like { port: 0 } (port 0: any free port)', { field: 'inspector' });
  }
  const known = ['port', 'host'];
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new ShumaError('INVALID_ARGUMENT', `options.inspector.${key} is not an inspector option; known: ${known.join(', ')}`, { field: `inspector.${key}` });
    }
  }
  const { port, host } = value as { port?: unknown; host?: unknown };
  if (typeof port !== 'number' || !Number.isSafeInteger(port) || port < 0 || port > 65535) {
    throw new ShumaError('INVALID_ARGUMENT', `options.inspector.port must be a whole number from 0 to 65535 (0: any free port; got ${JSON.stringify(port)})`, {
      field: 'inspector.port',
    });
  }
  if (host !== undefined && (typeof host !== 'string' || !isLoopback(host))) {
    throw new ShumaError(
      'INVALID_ARGUMENT',
      `options.inspector.host must be a loopback address (127.0.0.1, another 127.x.y.z, ::1 or localhost; got ${JSON.stringify(host)}): the inspector shows every process and is never served to the network`,
      { field: 'inspector.host' },
    );
  }
  // `localhost` may resolve to either family: the inspector binds the IPv4 loopback for it.
  const address = host === undefined || host === 'localhost' ? '127.0.0.1' : host === '[::1]' ? '::1' : host;
  return { port, host: address };
}
