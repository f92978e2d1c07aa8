// The workspace a `run`, `pipeline run` or `apply` names. A label no workspace has makes one (as
// `pm2 start` does); a ULID-shaped name is an id, and an unknown id is an error rather than a new
// label. A workspace being made is claimed by its label before the first await, so that two
// requests for the same new label share it instead of making two.
import type { Runtime } from '../host/runtime.js';
import type { RuntimeView } from '../host/runtime-view.js';
import type { Workspace } from '../host/workspace-handle.js';
import { ULID_PATTERN } from '../protocol/checks.js';
import type { PlacementSpec } from '../protocol/placement-spec.js';
import { findWorkspace, resolveWorkspace } from './names.js';

export class WorkspaceMaker {
  private readonly creating = new Map<string, Promise<Workspace>>();

  constructor(
    private readonly rt: Runtime,
    private readonly core: RuntimeView,
  ) {}

  async workspaceFor(name: string, placement?: PlacementSpec): Promise<{ ws: Workspace; created: boolean }> {
    this.core.ensureOpen();
    // A workspace being made is in the registry before it runs: wait for it to run, rather
    // than find it there and be refused (its actor is still 'created').
    const pending = this.creating.get(name);
    if (pending) return { ws: await pending, created: false };
    const found = findWorkspace(this.core, name);
    if (found) return { ws: this.rt.workspace(found.id)!, created: false };
    if (ULID_PATTERN.test(name)) resolveWorkspace(this.core, name);
    const making = this.rt.createWorkspace({ label: name, ...(placement ? { placement } : {}) });
    this.creating.set(name, making);
    try {
      return { ws: await making, created: true };
    } finally {
      this.creating.delete(name);
    }
  }

  isBeingMade(label: string): boolean {
    return this.creating.has(label);
  }

  /** Holds `label` for a workspace someone else makes; released by `release`. */
  claim(label: string, made: Promise<Workspace>): void {
    this.creating.set(label, made);
  }

  release(label: string): void {
    this.creating.delete(label);
  }
}
