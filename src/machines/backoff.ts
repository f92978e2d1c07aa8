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

/** Whether a policy allows one more relaunch after `restarts` relaunches. */
export function mayRestart(policy: ResolvedRestartPolicy, restarts: number): boolean {
  // `always` is absent from policies persisted before it existed.
  return (policy.onFailure || policy.always === true) && (policy.maxRestarts === 0 || restarts < policy.maxRestarts);
}
