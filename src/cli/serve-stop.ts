// The daemon's side of `shuma stop <name>`: a workspace, a pipeline, or one command, named as
// `ps` shows them. A name that fits a workspace and a pipeline is refused rather than guessed.
import { ShumaError } from '../protocol/errors.js';
import { findCommand, findPipeline, findWorkspace } from './names.js';
import { stopCommandNamed } from './serve-command-ops.js';
import type { ServeContext } from './serve-context.js';

export async function stopNamed({ rt, core }: ServeContext, target: string, graceMs: number | undefined) {
  core.ensureOpen();
  const ws = findWorkspace(core, target);
  const pipe = findPipeline(core, target);
  if (ws && pipe) {
    throw new ShumaError('AMBIGUOUS_NAME', `${JSON.stringify(target)} names workspace ${ws.id} and pipeline ${pipe.id}: use an id`);
  }
  const options = graceMs === undefined ? {} : { graceMs };
  if (ws) {
    const result = await rt.workspace(ws.id)!.stop(options);
    return { kind: 'workspace' as const, id: ws.id, label: ws.label, ...result };
  }
  if (pipe) {
    const result = await rt.pipeline(pipe.id)!.stop(options);
    return { kind: 'pipeline' as const, id: pipe.id, label: pipe.label, ...result };
  }
  const command = findCommand(core, target);
  if (command) return stopCommandNamed(rt, command, graceMs);
  throw new ShumaError('WORKSPACE_NOT_FOUND', `no workspace, pipeline or command has the id or label ${JSON.stringify(target)}: \`shuma ps\` lists them`);
}
