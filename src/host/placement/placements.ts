import type { WorkspaceSpec } from '../../protocol/specs.js';
import { LocalPlacement, type LocalPlacementDeps } from './local-placement.js';
import type { Placement } from './placement.js';

/** Every placement a runtime can put a workspace on, by kind; `local` always. */
export interface Placements {
  readonly local: LocalPlacement;
  get(kind: string): Placement | undefined;
  all(): Iterable<Placement>;
}

export function createPlacements(deps: LocalPlacementDeps): Placements {
  const local = new LocalPlacement(deps);
  const byKind = new Map<string, Placement>([[local.kind, local]]);
  return {
    local,
    get: (kind) => byKind.get(kind),
    all: () => byKind.values(),
  };
}

/** Which placement a workspace spec asks for. */
export function placementKindOf(_spec: WorkspaceSpec): string {
  return 'local';
}
