// `shuma delete <cmd>`: one command stopped (SIGTERM, SIGKILL after the grace) and forgotten.
import { numberOption, parseCommand, UsageError } from './cli-args.js';
import { printJson, stdio, withDaemon, type Output } from './client-command.js';
import { EXIT_OK } from './exit-codes.js';

export const DELETE_USAGE = 'shuma delete [--grace MS] [--json] <command>';

export async function deleteCommand(args: readonly string[], io: Output = stdio): Promise<number> {
  const parsed = parseCommand(args, { grace: { type: 'string' } }, DELETE_USAGE);
  if (parsed.positionals.length !== 1) throw new UsageError('name one command (label, ws/label or id)', DELETE_USAGE);
  const graceMs = numberOption(parsed, 'grace', DELETE_USAGE);
  return withDaemon(parsed, async (client) => {
    const result = await client.call('delete', { target: parsed.positionals[0]!, ...(graceMs === undefined ? {} : { graceMs }) });
    if (parsed.values.json) printJson(result, io);
    else io.out.write(`deleted ${result.name} (${result.commandKey}): ${result.reaped} ${result.reaped === 1 ? 'process' : 'processes'} reaped\n`);
    return EXIT_OK;
  });
}
