import type { HostRequestEvent, LogRequest } from '../protocol/host-requests.js';

// What the machines share: how a child asks the host to log, how an event's time becomes the
// time delays count from, how long is left until a deadline, and the FAULT drill.

/** A log line asked of the host (workers forward logs; the main thread's logger writes them). */
export function hostLog(level: LogRequest['level'], msg: string, fields: LogRequest['fields']): HostRequestEvent {
  return { type: 'HOST_REQUEST', request: { type: 'log', level, msg, fields } };
}

/** The context update that makes an event's host-clock time the one delays count from. */
export function stampOf(event: object): { stampedAt?: number } {
  return 'at' in event && typeof event.at === 'number' ? { stampedAt: event.at } : {};
}

/** A deadline as a delay from the latest stamp (0 once it passed; none armed: 0). */
export function untilDeadline(deadline: number | null, stampedAt: number): number {
  return Math.max(0, (deadline ?? stampedAt) - stampedAt);
}

/** A backoff whose deadline already passed at the latest stamp: relaunch in the same step. */
export function backoffOver(context: { backoffDeadline: number | null; stampedAt: number }): boolean {
  return context.backoffDeadline !== null && context.backoffDeadline <= context.stampedAt;
}

/** The FAULT event's action: the actor throws inside its worker, as a bug would (chaos drills). */
export function throwFault({ event }: { event: { type: string; message?: unknown } }): never {
  throw new Error(event.type === 'FAULT' ? String(event.message) : 'fault');
}
