// The daemon's side of `shuma why <name>`: the causal trail of a command or a pipeline.
import type { WhyResult } from '../protocol/control-results.js';
import { ShumaError } from '../protocol/errors.js';
import { findCommand, findPipeline, resolveCommand, runsOf } from './names.js';
import type { ServeContext } from './serve-context.js';

export async function why({ rt, core }: ServeContext, target: string): Promise<WhyResult> {
  core.ensureOpen();
  const command = findCommand(core, target);
  const pipe = findPipeline(core, target);
  if (command && pipe) {
    throw new ShumaError('AMBIGUOUS_NAME', `${JSON.stringify(target)} names command ${command.key} and pipeline ${pipe.id}: use an id`);
  }
  if (pipe) return { kind: 'pipeline', id: pipe.id, label: pipe.label, entries: await rt.pipeline(pipe.id)!.why() };
  const ref = command ?? resolveCommand(core, target);
  if (ref.pipeline) return { kind: 'pipeline', id: ref.pipeline.id, label: ref.pipeline.label, entries: await rt.pipeline(ref.pipeline.id)!.why() };
  // Its id as `ps` shows it: the latest run's (the command's key only before any run).
  const id = runsOf(core, ref).at(-1)?.id ?? ref.key;
  return { kind: 'command', id, label: `${ref.ws.label}/${ref.label}`, entries: await rt.workspace(ref.ws.id)!.why(ref.key) };
}
