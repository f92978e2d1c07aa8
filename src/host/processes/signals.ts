import { constants } from 'node:os';
import type { Logger } from 'pino';
import { serializeError } from '../../protocol/errors.js';
import type { Signal } from '../../protocol/host-requests.js';
import { isSameProcess, type ProcStat } from './proc.js';

// Sending a signal to what the runtime started: a process group (every run leads its own), a
// pid read from a cgroup, a descendant seen earlier. "Already gone" is never an error here.

/**
 * kill(2) answering its errno instead of throwing it: the addon's, given by the native spawner
 * as it loads it (null: process.kill). The reaper asks whether a run's group is empty (signal 0)
 * at every exit, and it mostly is: the ErrnoException that process.kill throws for that captures
 * the whole stack (profiled, ~40 µs of the main thread's CPU a run, between the exit and
 * `exited`; kill(2) itself ~3).
 */
let quietKill: ((pid: number, signo: number) => number) | null = null;

export function signalThrough(kill: (pid: number, signo: number) => number): void {
  quietKill = kill;
}

/** False when no process is left in the group. Signal 0 only asks whether one is. */
export function signalGroup(pgid: number, signal: Signal | 0, logger: Logger): boolean {
  const errno = quietKill?.(-pgid, signal === 0 ? 0 : constants.signals[signal]);
  if (errno === 0) return true;
  if (errno === constants.errno.ESRCH) return false;
  // Another refusal (EPERM…), or no addon: process.kill says why, as it always did.
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === 'ESRCH') return false;
    logger.error({ pgid, signal, err: serializeError(error) }, 'could not signal a process group');
    return true;
  }
}

/** Whether a process (a zombie too) has this pid now; EPERM says one does, not ours to signal. */
export function processExists(pid: number): boolean {
  const errno = quietKill?.(pid, 0);
  if (errno !== undefined) return errno !== constants.errno.ESRCH;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code !== 'ESRCH';
  }
}

export function signalPid(pid: number, signal: Signal): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Exited since cgroup.procs was read: nothing left to signal.
  }
}

/** Signals a process seen earlier, unless its pid now names another process. */
export function signalIfSame(seen: ProcStat, signal: Signal, logger: Logger): void {
  try {
    if (!isSameProcess(seen)) return;
    process.kill(seen.pid, signal);
  } catch (error) {
    if ((error as { code?: string }).code !== 'ESRCH') {
      logger.error({ pid: seen.pid, err: serializeError(error) }, 'could not signal an escaped descendant');
    }
  }
}

