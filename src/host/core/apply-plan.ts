// What `apply` will do, decided from the spec and the live registry before anything is done:
// each workspace, command and pipeline of the spec is created, left, changed or restarted, and
// with `prune` what the spec's workspaces hold beyond the spec is removed. Then every program
// and working directory that will start is checked, so that a bad spec changes nothing.
import { commandLabelOf, type CheckedApplySpec, type CheckedWorkspace, type FilePipelineSpec } from '../../protocol/apply-spec.js';
import { ShumaError } from '../../protocol/errors.js';
import type { CommandSpec } from '../../protocol/specs.js';
import type { CommandEntry, PipelineEntry, WorkspaceEntry } from '../registry/registry.js';
import { launchPlan } from '../spawn/launch-plan.js';
import { checkCwd } from '../spawn/spawn-check.js';
import type { CoreParts } from './core-parts.js';

/**
 * Command fields whose change restarts the command: they shape its process (exec, argv, env,
 * cwd, node, timestamps) or are what its actor takes when a run starts (restart, ready).
 * `dependsOn` orders the first start only: its change is recorded without a restart.
 */
export const RESTART_FIELDS = ['exec', 'argv', 'env', 'cwd', 'node', 'restart', 'ready', 'timestamps'] as const;

export type CommandChange = 'create' | 'unchanged' | 'restart' | 'update';
export type PipelineChange = 'create' | 'unchanged' | 'restart';

export interface CommandStep {
  label: string;
  spec: CommandSpec;
  live: CommandEntry | null;
  change: CommandChange;
  /** The fields that differ from the live command's. */
  fields: string[];
}

export interface PipelineStep {
  spec: FilePipelineSpec;
  /** The live pipeline of that label (its latest run), and older ones of the same label. */
  live: PipelineEntry | null;
  older: PipelineEntry[];
  change: PipelineChange;
  fields: string[];
}

export interface WorkspaceStep {
  want: CheckedWorkspace;
  live: WorkspaceEntry | null;
  /** The workspace's own fields that differ: it is stopped and made again (its fields cannot change in place). */
  recreate: string[] | null;
  commands: CommandStep[];
  pipelines: PipelineStep[];
  pruneCommands: CommandEntry[];
  prunePipelines: PipelineEntry[];
}

/** A value with its object keys sorted and undefined fields dropped: equal specs print alike. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

/** The top-level fields of `a` and `b` that differ, `ignored` aside. */
export function changedFields(a: object, b: object, ignored: readonly string[]): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  return [...keys].filter((key) => !ignored.includes(key) && canonical(x[key]) !== canonical(y[key])).sort();
}

function liveWorkspace(core: CoreParts, label: string): WorkspaceEntry | null {
  const found = [...core.registry.all()].filter((ws) => ws.label === label && !ws.stopRequested && !ws.hostStop);
  if (found.length > 1) {
    throw new ShumaError(
      'AMBIGUOUS_NAME',
      `${found.length} live workspaces are labelled ${JSON.stringify(label)} (${found.map((ws) => ws.id).join(', ')}): apply finds a workspace by its label; stop all but one`,
    );
  }
  return found[0] ?? null;
}

function commandSteps(want: CheckedWorkspace, live: WorkspaceEntry | null): CommandStep[] {
  const byLabel = new Map([...(live?.commands.values() ?? [])].map((c) => [c.label, c] as const));
  return want.commands.map((spec) => {
    const label = commandLabelOf(spec);
    const current = byLabel.get(label) ?? null;
    if (!current) return { label, spec, live: null, change: 'create', fields: [] };
    const fields = changedFields(current.spec, spec, ['label']);
    const change: CommandChange =
      fields.length === 0 ? 'unchanged' : fields.some((f) => (RESTART_FIELDS as readonly string[]).includes(f)) ? 'restart' : 'update';
    return { label, spec, live: current, change, fields };
  });
}

function pipelineSteps(want: CheckedWorkspace, live: WorkspaceEntry | null): PipelineStep[] {
  const all = [...(live?.pipelines.values() ?? [])];
  return want.pipelines.map((spec) => {
    const same = all.filter((p) => p.label === spec.label);
    const current = same.at(-1) ?? null;
    if (!current) return { spec, live: null, older: [], change: 'create', fields: [] };
    const fields = changedFields(current.spec, spec, ['workspace']);
    // A finished pipeline of the same spec is left as it ended: apply does not run a batch again.
    return { spec, live: current, older: same.slice(0, -1), change: fields.length === 0 ? 'unchanged' : 'restart', fields };
  });
}

export function planApply(core: CoreParts, spec: CheckedApplySpec, prune: boolean): WorkspaceStep[] {
  return spec.workspaces.map((want): WorkspaceStep => {
    const live = liveWorkspace(core, want.spec.label);
    const recreateFields = live ? changedFields(live.spec, want.spec, ['label']) : [];
    const recreate = live && recreateFields.length > 0 ? recreateFields : null;
    const inPlace = live && !recreate ? live : null;
    const commands = commandSteps(want, inPlace);
    const pipelines = pipelineSteps(want, inPlace);
    const wantedCommands = new Set(commands.map((c) => c.label));
    const wantedPipelines = new Set(want.pipelines.map((p) => p.label));
    return {
      want,
      live,
      recreate,
      commands,
      pipelines,
      pruneCommands: prune && inPlace ? [...inPlace.commands.values()].filter((c) => !wantedCommands.has(c.label)) : [],
      prunePipelines: prune && inPlace ? [...inPlace.pipelines.values()].filter((p) => !wantedPipelines.has(p.label)) : [],
    };
  });
}

/**
 * Every working directory and program that will start, checked now (as a run would check it):
 * the first problem is thrown with the spec field that holds it, before anything changed.
 */
export async function preflight(core: CoreParts, steps: readonly WorkspaceStep[]): Promise<void> {
  for (const [i, step] of steps.entries()) {
    const at = `workspaces[${i}]`;
    const fresh = !step.live || step.recreate !== null;
    const ws = fresh
      ? { cwd: await prefixed(at, () => checkCwd(step.want.spec.cwd ?? process.cwd(), 'cwd', 'INVALID_SPEC')), env: { ...core.baseEnv, ...step.want.spec.env } }
      : step.live!;
    for (const [j, command] of step.commands.entries()) {
      if (command.change === 'create' || command.change === 'restart') await prefixed(`${at}.commands[${j}]`, () => launchPlan(ws, command.spec));
    }
    for (const [k, pipeline] of step.pipelines.entries()) {
      if (pipeline.change === 'unchanged') continue;
      for (const [n, node] of pipeline.spec.nodes.entries()) await prefixed(`${at}.pipelines[${k}].nodes[${n}]`, () => launchPlan(ws, node));
    }
  }
}

/** A check's error, its field named as a path in the spec. */
async function prefixed<T>(at: string, check: () => Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (error) {
    if (!(error instanceof ShumaError)) throw error;
    const field = `${at}.${error.field ?? 'exec'}`;
    const detail = error.field && error.detail.startsWith(error.field) ? error.detail.slice(error.field.length).trimStart() : error.detail;
    throw new ShumaError(error.code, `${field} ${detail}`, { field, ...(error.osCode ? { cause: error.osCode } : {}) });
  }
}
