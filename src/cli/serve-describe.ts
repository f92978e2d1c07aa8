// The daemon's side of `shuma describe <cmd>`: the command named as `ps` shows it, described by
// its workspace's handle (`ws.describe`).
import type { CommandDescription } from '../protocol/command-description.js';
import { ShumaError } from '../protocol/errors.js';
import { resolveCommand } from './names.js';
import type { ServeContext } from './serve-context.js';

export async function describeNamed({ rt, core }: ServeContext, target: string): Promise<CommandDescription> {
  core.ensureOpen();
  const ref = resolveCommand(core, target);
  if (ref.pipeline) {
    const name = `${ref.ws.label}/${ref.pipeline.label}/${ref.label}`;
    throw new ShumaError('INVALID_ARGUMENT', `${name} is a node of pipeline ${ref.pipeline.label}: describe takes a supervised command; \`shuma why ${ref.ws.label}/${ref.pipeline.label}\` tells the pipeline's story`);
  }
  return rt.workspace(ref.ws.id)!.describe(ref.key);
}
