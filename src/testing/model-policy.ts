// The restart rules the model machines (the command model in test/model-based.test.ts, the
// pipeline model in pipeline-model.ts) are written from: the documented policy, not the
// machines' own code (src/machines/backoff.ts), so that a model can catch a machine that is wrong.

/** A restart policy as the models know it (no `always`, no `resetAfterMs`: the paths never reach them). */
export interface ModelPolicy {
  onFailure: boolean;
  backoffMs: number;
  maxBackoffMs: number;
  maxRestarts: number;
}

/** What a model knows of its supervision: its policy and the relaunches so far. */
export interface ModelRestarts {
  policy: ModelPolicy;
  restarts: number;
}

/** The delay before relaunch number `restarts + 1`: doubling from backoffMs up to maxBackoffMs. */
export function modelBackoffMs(c: ModelRestarts): number {
  const { backoffMs, maxBackoffMs } = c.policy;
  return c.restarts === 0 ? backoffMs : Math.min(backoffMs * 2 ** c.restarts, maxBackoffMs);
}

/** Whether one more relaunch is allowed: a supervised policy, and restarts left (0: no limit). */
export function modelMayRestart(c: ModelRestarts): boolean {
  return c.policy.onFailure && (c.policy.maxRestarts === 0 || c.restarts < c.policy.maxRestarts);
}
