// What `shuma up` follows of each actor it started: enough for a line of output.
import type { Workspace } from '../host/workspace-handle.js';
import { stateName } from '../protocol/state-value.js';

export type ActorKind = 'workspace' | 'command' | 'pipeline';

export interface Tracked {
  kind: ActorKind;
  /** `workspace` or `workspace/label`. */
  name: string;
  ws: Workspace;
  state: string;
  pid: number | null;
  restarts: number;
  /** A pending backoff (commands, pipelines) or TTL (workspaces), epoch ms. */
  deadline: number | null;
  deadlineName: 'backoff' | 'ttl' | null;
  /** Commands and pipelines: ended for good, and whether it succeeded. */
  done: boolean;
  ok: boolean;
}

/**
 * A machine state by the name the docs give it: the top-level state (`reaping`, not
 * `reaping.terminating`; its substates are the machine's own steps, shown in the inspector).
 */
export function stateText(value: unknown): string {
  return typeof value === 'string' || (value !== null && typeof value === 'object') ? stateName(value) : String(value);
}
