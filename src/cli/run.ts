// `shuma run -w <ws> -- program args…`: starts a command in a workspace (made if the label is new).
import type { CommandSpec, PlacementSpec, RestartPolicy } from '../protocol/specs.js';
import { numberOption, parseCommand, stringOption, UsageError } from './cli-args.js';
import { commandEnv, ENV_OPTIONS } from './command-env.js';
import { printJson, stdio, withStartedDaemon, type Output } from './client-command.js';
import { EXIT_OK } from './exit-codes.js';

export const RUN_USAGE =
  'shuma run -w <workspace> [--label|--name L] [--group G] [--restart always|on-failure|never] [--backoff-ms N] [--max-backoff-ms N] ' +
  '[--max-restarts N] [--env K=V]… [--env-file F]… [--no-inherit-env] [--cwd DIR] [--time] [--slurm-nodes N] [--json] -- <program> [args…]';

export function commandSpecFrom(args: readonly string[]): {
  workspace: string;
  spec: CommandSpec;
  parsed: ReturnType<typeof parseCommand>;
  placement: PlacementSpec | undefined;
} {
  const parsed = parseCommand(
    args,
    {
      workspace: { type: 'string', short: 'w' },
      label: { type: 'string', short: 'l' },
      restart: { type: 'string' },
      'backoff-ms': { type: 'string' },
      'max-backoff-ms': { type: 'string' },
      'max-restarts': { type: 'string' },
      group: { type: 'string' },
      ...ENV_OPTIONS,
      cwd: { type: 'string' },
      time: { type: 'boolean' },
      'slurm-nodes': { type: 'string' },
    },
    RUN_USAGE,
  );
  const workspace = stringOption(parsed, 'workspace');
  if (!workspace) throw new UsageError('-w <workspace> is needed: a workspace id, or a label (a new label makes a workspace)', RUN_USAGE);
  const program = parsed.rest ?? parsed.positionals;
  if (parsed.rest !== null && parsed.positionals.length > 0) throw new UsageError(`unexpected ${JSON.stringify(parsed.positionals[0])} before --`, RUN_USAGE);
  if (program.length === 0) throw new UsageError('no program given: put it after --', RUN_USAGE);
  const restartMode = stringOption(parsed, 'restart');
  if (restartMode !== undefined && restartMode !== 'on-failure' && restartMode !== 'never' && restartMode !== 'always') {
    throw new UsageError(`--restart must be always, on-failure or never (got ${JSON.stringify(restartMode)})`, RUN_USAGE);
  }
  const env = commandEnv(parsed, RUN_USAGE);
  const restart: RestartPolicy | undefined =
    restartMode === undefined ? undefined : { onFailure: restartMode !== 'never', ...(restartMode === 'always' ? { always: true } : {}) };
  const tuning = { backoffMs: 'backoff-ms', maxBackoffMs: 'max-backoff-ms', maxRestarts: 'max-restarts' } as const;
  for (const [field, option] of Object.entries(tuning)) {
    const value = numberOption(parsed, option, RUN_USAGE);
    if (value === undefined) continue;
    if (!restart) throw new UsageError(`--${option} needs --restart on-failure (or always)`, RUN_USAGE);
    restart[field as keyof typeof tuning] = value;
  }
  const label = stringOption(parsed, 'label');
  // One of the workspace's named supervision groups (its spec's `groups`, e.g. from `shuma apply`).
  const group = stringOption(parsed, 'group');
  const spec: CommandSpec = {
    exec: program[0]!,
    argv: program.slice(1),
    // The daemon's cwd means nothing to the user: a relative path is theirs.
    cwd: stringOption(parsed, 'cwd') ?? process.cwd(),
    ...(label !== undefined ? { label } : {}),
    ...(group !== undefined ? { group } : {}),
    ...(Object.keys(env).length ? { env } : {}),
    ...(restart ? { restart } : {}),
    // PM2's --time: each line of its log files starts with the time it was read.
    ...(parsed.values.time ? { timestamps: true } : {}),
  };
  const slurmNodes = numberOption(parsed, 'slurm-nodes', RUN_USAGE);
  if (slurmNodes !== undefined && slurmNodes < 1) throw new UsageError('--slurm-nodes must be at least 1', RUN_USAGE);
  // A new workspace is placed on Slurm ($SLURM_CONF of the daemon) with that many nodes.
  const placement: PlacementSpec | undefined = slurmNodes === undefined ? undefined : { kind: 'slurm', nodes: slurmNodes };
  return { workspace, spec, parsed, placement };
}

export async function run(args: readonly string[], io: Output = stdio): Promise<number> {
  const { workspace, spec, parsed, placement } = commandSpecFrom(args);
  return withStartedDaemon(parsed, async (client) => {
    const result = await client.call('run', { workspace, spec, ...(placement ? { placement } : {}) });
    if (parsed.values.json) printJson(result, io);
    else {
      const ws = result.workspace;
      const where = result.command.node ? ` on ${result.command.node}` : '';
      io.out.write(
        `${ws.created ? `created workspace ${ws.label} (${ws.id})\n` : ''}` +
          `started ${ws.label}/${result.command.label}${where}: pid ${result.command.pid}, command ${result.command.id}\n`,
      );
    }
    return EXIT_OK;
  });
}
