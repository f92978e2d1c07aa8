import type { PlacementInfo } from '../../protocol/placement-spec.js';
import type { Placement } from '../placement/placement.js';
import type { WorkspaceEntry } from '../registry/registry.js';

// What ws.placement says while a workspace's placement is prepared (create-while-placing.ts):
// nobody outside the core reads it then, and nothing can run in it yet (guards.ts). It is
// replaced by the placement's answer once the allocation is granted.

const placing = new WeakSet<PlacementInfo>();

export function notYetPlaced(placement: Placement): PlacementInfo {
  const info: PlacementInfo = placement.kind === 'slurm' ? { kind: 'slurm', jobId: '', nodes: [] } : { kind: 'local' };
  placing.add(info);
  return info;
}

/** Hosted while its placement is still being prepared (a Slurm allocation not granted yet). */
export function isPlacing(ws: WorkspaceEntry): boolean {
  return placing.has(ws.placement);
}
