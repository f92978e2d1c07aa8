// `shuma stop <ws|pipeline|cmd>`: SIGTERM to its process groups, SIGKILL after the grace.
import { numberOption, parseCommand, UsageError } from './cli-args.js';
import { printJson, stdio, withDaemon, type Output } from './client-command.js';
import { EXIT_OK } from './exit-codes.js';

export const STOP_USAGE = 'shuma stop [--grace MS] [--json] <workspace|pipeline|command>';

export async function stop(args: readonly string[], io: Output = stdio): Promise<number> {
  const parsed = parseCommand(args, { grace: { type: 'string' } }, STOP_USAGE);
  if (parsed.positionals.length !== 1) throw new UsageError('name one workspace, pipeline or command (label, ws/label or id)', STOP_USAGE);
  const graceMs = numberOption(parsed, 'grace', STOP_USAGE);
  return withDaemon(parsed, async (client) => {
    const result = await client.call('stop', { target: parsed.positionals[0]!, ...(graceMs === undefined ? {} : { graceMs }) });
    if (parsed.values.json) printJson(result, io);
    else {
      const escaped = result.escaped.length ? `; ${result.escaped.length} escaped descendants killed` : '';
      io.out.write(`stopped ${result.kind} ${result.label} (${result.id}): ${result.reaped} ${result.reaped === 1 ? 'process' : 'processes'} reaped${escaped}\n`);
    }
    return EXIT_OK;
  });
}
