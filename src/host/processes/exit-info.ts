import { constants } from 'node:os';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The exit code, or 128 + the signal number when a signal ended the process (as a shell says). */
  status: number;
}

export function toExitInfo(code: number | null, signal: NodeJS.Signals | null): ExitInfo {
  if (signal !== null) {
    const number = constants.signals[signal] ?? 0;
    return { code: null, signal, status: 128 + number };
  }
  // Neither: the status was lost (something else reaped the child); -1, as for an adopted
  // process, never a made-up success.
  if (code === null) return { code: null, signal: null, status: -1 };
  return { code, signal: null, status: code };
}
