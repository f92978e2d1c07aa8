import type { StopReason } from '../protocol/machine-events.js';
import type { SupervisionSpec } from '../protocol/supervision-spec.js';
import { newGroup, type GroupContext } from './group.js';

// What a workspace actor knows: its input and its context. What it can do is
// workspace-setup.ts; its chart (which of them run when) is workspace-machine.ts.

export interface WorkspaceInput {
  id: string;
  label: string;
  ttlMs: number | null;
  supervision?: SupervisionSpec | null;
  /** Named groups, each a supervisor of its own members (WorkspaceSpec.groups). */
  groups?: Record<string, SupervisionSpec> | null;
}

export interface WorkspaceContext {
  id: string;
  label: string;
  ttlMs: number | null;
  createdAt: number | null;
  /** Absolute (epoch ms) times: they survive a snapshot, relative timers do not. */
  ttlDeadline: number | null;
  graceDeadline: number | null;
  graceMs: number | null;
  stampedAt: number;
  stopReason: StopReason | null;
  /** Why a quota stopped the workspace, e.g. `nproc: 3 alive > 2 limit`. */
  quotaBreach: string | null;
  /** Why a group that escalated stopped it (absent in older snapshots). */
  supervisionDetail?: string | null;
  commandsStarted: number;
  reaped: number | null;
  stoppedAt: number | null;
  /** Its commands as one supervised group: dependencies, strategy, intensity. */
  group: GroupContext;
}

/** A new workspace's context: nothing started yet, no deadline armed. */
export function initialWorkspaceContext(input: WorkspaceInput): WorkspaceContext {
  return {
    id: input.id,
    label: input.label,
    ttlMs: input.ttlMs,
    createdAt: null,
    ttlDeadline: null,
    graceDeadline: null,
    graceMs: null,
    stampedAt: 0,
    stopReason: null,
    quotaBreach: null,
    supervisionDetail: null,
    commandsStarted: 0,
    reaped: null,
    stoppedAt: null,
    group: newGroup(input.supervision, input.groups),
  };
}
