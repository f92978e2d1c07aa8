// `shuma pipeline run|save|ls|run-saved|rm|stop`: pipelines, written inline as a shell would
// (`-- seq 1 100 '|' grep 7 '|' wc -l`) or read from a YAML/JSON file.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { PipelineStarted } from '../protocol/control-results.js';
import type { CommandSpec } from '../protocol/specs.js';
import { HelpRequest, parseCommand, stringOption, UsageError, type Parsed } from './cli-args.js';
import { printJson, stdio, table, withDaemon, withStartedDaemon, type Output } from './client-command.js';
import { EXIT_OK } from './exit-codes.js';
import { stop } from './stop.js';
import { commandEnv, ENV_OPTIONS } from './command-env.js';
import { closest } from './suggest.js';

const PIPELINE_COMMANDS = ['run', 'save', 'ls', 'run-saved', 'rm', 'stop'];

export const PIPELINE_USAGE = [
  'shuma pipeline run -w <workspace> [--label|--name L] [--tap] [--discern any|last] [--restart on-failure] [--env K=V]… [--env-file F]… [--no-inherit-env] (--file F | -- prog args \'|\' prog args…)',
  '       shuma pipeline save <name> -w <workspace> […same as run]',
  '       shuma pipeline ls | run-saved <name> [-w <workspace>] | rm <name> | stop <pipeline> [--grace MS]',
].join('\n');

const SPEC_OPTIONS = {
  workspace: { type: 'string', short: 'w' },
  label: { type: 'string', short: 'l' },
  tap: { type: 'boolean' },
  discern: { type: 'string' },
  restart: { type: 'string' },
  file: { type: 'string', short: 'f' },
  ...ENV_OPTIONS,
} as const;

/** `a x '|' b y` → nodes a and b, an edge a → b. Labels are the programs' names, made unique. */
export function inlineNodes(words: readonly string[]): { nodes: Array<CommandSpec & { label: string }>; edges: Array<{ from: string; to: string }> } {
  const segments: string[][] = [[]];
  for (const word of words) {
    if (word === '|') segments.push([]);
    else segments.at(-1)!.push(word);
  }
  if (segments.some((s) => s.length === 0)) throw new UsageError("an empty stage: write stages as -- prog args '|' prog args", PIPELINE_USAGE);
  const used = new Map<string, number>();
  const nodes = segments.map(([exec, ...argv]) => {
    const base = path.basename(exec!);
    const n = (used.get(base) ?? 0) + 1;
    used.set(base, n);
    return { label: n === 1 ? base : `${base}-${n}`, exec: exec!, argv, cwd: process.cwd() };
  });
  const edges = nodes.slice(1).map((node, i) => ({ from: nodes[i]!.label, to: node.label }));
  return { nodes, edges };
}

/** The spec a `run` or `save` describes; the daemon checks it with the API's validator. */
function specFrom(parsed: Parsed, defaultLabel?: string): Record<string, unknown> {
  const file = stringOption(parsed, 'file');
  let spec: Record<string, unknown>;
  if (file !== undefined) {
    if (parsed.rest !== null) throw new UsageError('give --file or stages after --, not both', PIPELINE_USAGE);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(`${file} cannot be read: ${(error as Error).message}`, PIPELINE_USAGE);
    }
    const data: unknown = parseYaml(text);
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new UsageError(`${file} must hold a pipeline: a mapping with label, nodes and edges`, PIPELINE_USAGE);
    spec = { ...(defaultLabel === undefined ? {} : { label: defaultLabel }), ...(data as Record<string, unknown>) };
  } else {
    if (parsed.rest === null || parsed.rest.length === 0) throw new UsageError("no stages: give --file F or -- prog args '|' prog args", PIPELINE_USAGE);
    const { nodes, edges } = inlineNodes(parsed.rest);
    spec = { label: defaultLabel ?? nodes.map((n) => n.label).join('-'), nodes, edges };
  }
  const workspace = stringOption(parsed, 'workspace') ?? spec.workspace;
  if (workspace === undefined) throw new UsageError('-w <workspace> is needed (an id, or a label; a new label makes a workspace)', PIPELINE_USAGE);
  const label = stringOption(parsed, 'label');
  const discern = stringOption(parsed, 'discern');
  const restart = stringOption(parsed, 'restart');
  if (restart !== undefined && restart !== 'on-failure' && restart !== 'never') throw new UsageError('--restart must be on-failure or never', PIPELINE_USAGE);
  // Each node gets the client's environment (as `shuma run` does) beneath its own env.
  const env = commandEnv(parsed, PIPELINE_USAGE);
  if (Array.isArray(spec.nodes) && Object.keys(env).length > 0) {
    spec.nodes = (spec.nodes as unknown[]).map((node) =>
      typeof node === 'object' && node !== null ? { ...node, env: { ...env, ...((node as { env?: Record<string, string> }).env ?? {}) } } : node,
    );
  }
  return {
    ...spec,
    workspace,
    ...(label !== undefined ? { label } : {}),
    ...(parsed.values.tap ? { tap: true } : {}),
    ...(discern !== undefined ? { discern } : {}),
    ...(restart !== undefined ? { restart: { onFailure: restart === 'on-failure' } } : {}),
  };
}

function startedText(p: PipelineStarted): string {
  return (
    `${p.workspace.created ? `created workspace ${p.workspace.label} (${p.workspace.id})\n` : ''}` +
    `started pipeline ${p.workspace.label}/${p.label} (${p.id}): ${p.nodes.map((n) => `${n.label}=${n.pid}`).join(' ')}\n`
  );
}

export async function pipeline(args: readonly string[], io: Output = stdio): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'run': {
      const parsed = parseCommand(rest, SPEC_OPTIONS, PIPELINE_USAGE);
      if (parsed.positionals.length > 0) throw new UsageError(`unexpected ${JSON.stringify(parsed.positionals[0])}: stages go after --`, PIPELINE_USAGE);
      const spec = specFrom(parsed);
      return withStartedDaemon(parsed, async (client) => {
        const started = await client.call('pipelineRun', { spec });
        if (parsed.values.json) printJson(started, io);
        else io.out.write(startedText(started));
        return EXIT_OK;
      });
    }
    case 'save': {
      const parsed = parseCommand(rest, SPEC_OPTIONS, PIPELINE_USAGE);
      if (parsed.positionals.length !== 1) throw new UsageError('name the saved pipeline: shuma pipeline save <name> -w <ws> …', PIPELINE_USAGE);
      // Run later under the name it is saved as, unless a label was given (flag or file).
      const spec = specFrom(parsed, parsed.positionals[0]!);
      return withStartedDaemon(parsed, async (client) => {
        const saved = await client.call('pipelineSave', { name: parsed.positionals[0]!, spec });
        if (parsed.values.json) printJson(saved, io);
        else io.out.write(`saved pipeline ${saved.name}\n`);
        return EXIT_OK;
      });
    }
    case 'ls': {
      const parsed = parseCommand(rest, {}, PIPELINE_USAGE);
      return withDaemon(parsed, async (client) => {
        const { saved } = await client.call('pipelineList', {});
        const { pipelines } = await client.call('ps', {});
        if (parsed.values.json) printJson({ saved, running: pipelines }, io);
        else {
          io.out.write(`saved: ${saved.length ? saved.join(', ') : '(none)'}\n`);
          if (pipelines.length) io.out.write(table([['PIPELINE', 'ID', 'STATE'], ...pipelines.map((p) => [`${p.workspace.label}/${p.label}`, p.id, p.state])]));
        }
        return EXIT_OK;
      });
    }
    case 'run-saved': {
      const parsed = parseCommand(rest, { workspace: { type: 'string', short: 'w' } }, PIPELINE_USAGE);
      if (parsed.positionals.length !== 1) throw new UsageError('name one saved pipeline (`shuma pipeline ls` lists them)', PIPELINE_USAGE);
      const workspace = stringOption(parsed, 'workspace');
      return withStartedDaemon(parsed, async (client) => {
        const started = await client.call('pipelineRunSaved', { name: parsed.positionals[0]!, ...(workspace === undefined ? {} : { workspace }) });
        if (parsed.values.json) printJson(started, io);
        else io.out.write(startedText(started));
        return EXIT_OK;
      });
    }
    case 'rm': {
      const parsed = parseCommand(rest, {}, PIPELINE_USAGE);
      if (parsed.positionals.length !== 1) throw new UsageError('name one saved pipeline', PIPELINE_USAGE);
      return withDaemon(parsed, async (client) => {
        const result = await client.call('pipelineDrop', { name: parsed.positionals[0]! });
        if (parsed.values.json) printJson(result, io);
        else io.out.write(result.dropped ? `removed saved pipeline ${result.name}\n` : `no saved pipeline is named ${result.name}\n`);
        return result.dropped ? EXIT_OK : 1;
      });
    }
    case 'stop':
      return stop(rest, io);
    default:
      if (sub === '--help' || sub === '-h') throw new HelpRequest(PIPELINE_USAGE);
      if (sub === undefined) throw new UsageError('which pipeline command?', PIPELINE_USAGE);
      {
        const near = closest(sub, PIPELINE_COMMANDS);
        throw new UsageError(`unknown pipeline command ${JSON.stringify(sub)}${near ? ` (did you mean ${near}?)` : ''}`, PIPELINE_USAGE);
      }
  }
}
