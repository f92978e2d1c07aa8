import type { ResolvedRestartPolicy } from '../protocol/specs.js';

/**
 * The delay before the next relaunch, and the one after it. The delay doubles after every
 * failure up to `maxBackoffMs`; a run that lasted `resetAfterMs` or longer starts the
 * sequence again, so a service that crashes rarely is relaunched quickly.
 */
export function nextBackoff(
  policy: ResolvedRestartPolicy,
  pendingMs: number,
  ranForMs: number,
): { delayMs: number; followingMs: number } {
  const stableRun = policy.resetAfterMs > 0 && ranForMs >= policy.resetAfterMs;
  const delayMs = stableRun ? policy.backoffMs : pendingMs;
  return { delayMs, followingMs: Math.min(delayMs * 2, policy.maxBackoffMs) };
}

/**
 * The backoff that starts now (`stampedAt`), for a run or an attempt that started at
 * `startedAt` (null: it never started, so it did not run long enough to reset the sequence).
 */
export function backoffFrom(
  policy: ResolvedRestartPolicy,
  pendingMs: number,
  stampedAt: number,
  startedAt: number | null,
): { backoffDeadline: number; pendingBackoffMs: number } {
  const { delayMs, followingMs } = nextBackoff(policy, pendingMs, startedAt === null ? 0 : stampedAt - startedAt);
  return { backoffDeadline: stampedAt + delayMs, pendingBackoffMs: followingMs };
}

/** Whether a policy allows one more relaunch after `restarts` relaunches. */
export function mayRestart(policy: ResolvedRestartPolicy, restarts: number): boolean {
  // `always` is absent from policies persisted before it existed.
  return (policy.onFailure || policy.always === true) && (policy.maxRestarts === 0 || restarts < policy.maxRestarts);
}
