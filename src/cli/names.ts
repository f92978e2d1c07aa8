// What a user types to name an actor, resolved in the daemon: an id, or a label. Labels are what
// people remember, ids are what is unique; `ws/label` narrows a command or pipeline label to one
// workspace. A label that fits more than one actor is an error listing their ids, never a guess.
import type { PipelineView, RunView, RuntimeView, WorkspaceView } from '../host/runtime-view.js';
import { ShumaError } from '../protocol/errors.js';

function unique<T>(found: T[], name: string, what: string, describeOne: (t: T) => string): T | undefined {
  const distinct = [...new Set(found)];
  if (distinct.length > 1) {
    throw new ShumaError(
      'AMBIGUOUS_NAME',
      `${JSON.stringify(name)} names ${distinct.length} ${what}s: ${distinct.map(describeOne).join(', ')}; use an id (or ws/label)`,
    );
  }
  return distinct[0];
}

export function findWorkspace(core: RuntimeView, name: string): WorkspaceView | undefined {
  const byId = core.registry.get(name);
  if (byId) return byId;
  const found = [...core.registry.all()].filter((ws) => ws.label === name);
  return unique(found, name, 'workspace', (ws) => `${ws.label} (${ws.id})`);
}

export function resolveWorkspace(core: RuntimeView, name: string): WorkspaceView {
  const ws = findWorkspace(core, name);
  if (!ws) {
    throw new ShumaError('WORKSPACE_NOT_FOUND', `no workspace has the id or label ${JSON.stringify(name)}: \`shuma ps\` lists the live ones`);
  }
  return ws;
}

/** `label`, `wsLabel/label` or `wsId/label` fits an actor of workspace `ws` labelled `label`. */
function labelFits(name: string, ws: WorkspaceView, label: string): boolean {
  return name === label || name === `${ws.label}/${label}` || name === `${ws.id}/${label}`;
}

export interface CommandRef {
  ws: WorkspaceView;
  /** The supervised command's key (every relaunch shares it), or `<pipeline id>/<node>`. */
  key: string;
  label: string;
  /** Set for a pipeline's node: its runs are that pipeline's runs with the node's label. */
  pipeline?: PipelineView;
}

/** The runs of a command or pipeline node, oldest first. */
export function runsOf(core: RuntimeView, ref: CommandRef): RunView[] {
  const runs = core.table.ofWorkspace(ref.ws.id);
  return ref.pipeline
    ? runs.filter((run) => run.pipelineId === ref.pipeline!.id && run.label === ref.label)
    : runs.filter((run) => run.key === ref.key && run.pipelineId === undefined);
}

/** Supervised commands and pipeline nodes: anything with runs and logs. */
function commandsOf(core: RuntimeView, ws: WorkspaceView): CommandRef[] {
  const refs: CommandRef[] = [];
  for (const [key, command] of ws.commands) refs.push({ ws, key, label: command.label });
  for (const pipeline of ws.pipelines.values()) {
    for (const node of pipeline.spec.nodes) refs.push({ ws, key: `${pipeline.id}/${node.label}`, label: node.label, pipeline });
  }
  return refs;
}

/** A node is also named `pipeline/node` and `ws/pipeline/node`. */
function nodeFits(name: string, ref: CommandRef): boolean {
  const p = ref.pipeline;
  if (!p) return false;
  return [`${p.label}/${ref.label}`, `${ref.ws.label}/${p.label}/${ref.label}`, `${ref.ws.id}/${p.label}/${ref.label}`].includes(name);
}

export function findCommand(core: RuntimeView, name: string): CommandRef | undefined {
  const run = core.table.get(name);
  const found: CommandRef[] = [];
  for (const ws of core.registry.all()) {
    for (const ref of commandsOf(core, ws)) {
      const isRun = run !== undefined && run.wsId === ws.id && (ref.pipeline ? run.pipelineId === ref.pipeline.id && run.label === ref.label : run.key === ref.key);
      if (ref.key === name || isRun || labelFits(name, ws, ref.label) || nodeFits(name, ref)) found.push(ref);
    }
  }
  // As `ps` shows them: the name, and the id of the latest run (the key only before any run).
  return unique(found, name, 'command', (ref) => `${ref.ws.label}/${ref.pipeline ? `${ref.pipeline.label}/` : ''}${ref.label} (${runsOf(core, ref).at(-1)?.id ?? ref.key})`);
}

export function resolveCommand(core: RuntimeView, name: string): CommandRef {
  const ref = findCommand(core, name);
  if (!ref) {
    throw new ShumaError(
      'COMMAND_NOT_FOUND',
      `no command has the id or label ${JSON.stringify(name)} in a live workspace: \`shuma ps\` lists them (label, ws/label, or id)`,
    );
  }
  return ref;
}

export function findPipeline(core: RuntimeView, name: string): PipelineView | undefined {
  const byId = core.pipelines.get(name);
  if (byId) return byId;
  const found = [...core.pipelines.values()].filter((p) => {
    const ws = core.registry.get(p.wsId);
    return ws !== undefined && labelFits(name, ws, p.label);
  });
  return unique(found, name, 'pipeline', (p) => `${core.registry.get(p.wsId)?.label ?? p.wsId}/${p.label} (${p.id})`);
}

/** The supervised commands of a workspace (pipeline nodes are shown with their pipeline). */
export function commandsOfWorkspace(core: RuntimeView, ws: WorkspaceView): CommandRef[] {
  return commandsOf(core, ws).filter((ref) => !ref.pipeline);
}
