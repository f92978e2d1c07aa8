import type { WorkspaceSpec } from '../../protocol/specs.js';
import { LocalPlacement, type LocalPlacementDeps } from './local-placement.js';
import type { Placement } from './placement.js';
import { SlurmPlacement } from './slurm/slurm-placement.js';
import type { SlurmOptions } from './slurm/workspace-job.js';

/** Every placement a runtime can put a workspace on, by kind; `local` always. */
export interface Placements {
  readonly local: LocalPlacement;
  get(kind: string): Placement | undefined;
  all(): Iterable<Placement>;
}

export function createPlacements(deps: LocalPlacementDeps, slurm: SlurmOptions = {}): Placements {
  const local = new LocalPlacement(deps);
  // Slurm's cluster is looked for when a workspace asks for it, not before: most runtimes never do.
  const cluster = new SlurmPlacement(deps, slurm);
  const byKind = new Map<string, Placement>([
    [local.kind, local],
    [cluster.kind, cluster],
  ]);
  return {
    local,
    get: (kind) => byKind.get(kind),
    all: () => byKind.values(),
  };
}

/** Which placement a workspace spec asks for. */
export function placementKindOf(spec: WorkspaceSpec): string {
  return spec.placement?.kind ?? 'local';
}
