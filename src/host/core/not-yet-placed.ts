import type { PlacementInfo } from '../../protocol/placement-spec.js';
import type { Placement } from '../placement/placement.js';

// What ws.placement says while a workspace's placement is prepared (create-while-placing.ts):
// nobody outside the core reads it then, and nothing can run in it yet (the registry knows it
// is placing; guards.ts). It is replaced by the placement's answer once the allocation is granted.

export function notYetPlaced(placement: Placement): PlacementInfo {
  return placement.kind === 'slurm' ? { kind: 'slurm', jobId: '', nodes: [] } : { kind: 'local' };
}
