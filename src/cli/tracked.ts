// What `shuma up` follows of each actor it started: enough for a line of output.
import type { Workspace } from '../host/workspace-handle.js';

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

export function stateText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    const [key, inner] = Object.entries(value)[0] ?? ['?', ''];
    return `${key}.${stateText(inner)}`;
  }
  return String(value);
}
