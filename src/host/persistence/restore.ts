import { validatePipelineSpec, type PipelineSpec } from '../../protocol/pipeline-spec.js';
import type { PersistedWorkspace, SnapshotData } from './snapshot-data.js';

/** What a restore needs of the runtime. */
export interface RestoreTarget {
  readonly savedPipelines: Map<string, PipelineSpec>;
  warn(message: string): void;
  restoreWorkspace(record: PersistedWorkspace, lostKeys: string[]): Promise<void>;
}

/** Machine states in which an actor has (or is getting) a process of its own. */
const HOLDS_PROCESS: Record<string, readonly string[]> = {
  command: ['starting', 'running', 'restarting', 'stopping'],
  pipeline: ['created', 'running', 'reaping', 'restarting', 'stopping'],
};

interface PersistedChild {
  src?: unknown;
  snapshot?: { value?: unknown; status?: unknown };
}

function stateName(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') return Object.keys(value)[0] ?? '';
  return '';
}

/** Children whose processes did not come through the restart: they hear RUN_LOST. */
export function lostChildren(actor: unknown): string[] {
  const children = (actor as { children?: Record<string, PersistedChild> } | null)?.children ?? {};
  return Object.entries(children)
    .filter(([, child]) => {
      const machine = typeof child.src === 'string' ? child.src : '';
      return child.snapshot?.status === 'active' && (HOLDS_PROCESS[machine] ?? []).includes(stateName(child.snapshot.value));
    })
    .map(([key]) => key);
}

export async function restoreSnapshot(target: RestoreTarget, data: SnapshotData): Promise<{ workspaces: number }> {
  for (const [name, spec] of Object.entries(data.savedPipelines)) {
    try {
      target.savedPipelines.set(name, validatePipelineSpec(spec));
    } catch (error) {
      target.warn(`saved pipeline '${name}' was not restored: ${(error as Error).message}`);
    }
  }
  let workspaces = 0;
  for (const record of data.workspaces) {
    try {
      await target.restoreWorkspace(record, lostChildren(record.actor));
      workspaces++;
    } catch (error) {
      target.warn(`workspace ${record.id} (${String(record.spec.label)}) was not restored: ${(error as Error).message}`);
    }
  }
  return { workspaces };
}
