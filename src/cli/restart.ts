// `shuma restart <ws|cmd>`: a new run of one command now, or of every command of a workspace.
import { parseCommand, UsageError } from './cli-args.js';
import { printJson, stdio, withDaemon, type Output } from './client-command.js';
import { EXIT_OK } from './exit-codes.js';

export const RESTART_USAGE = 'shuma restart [--json] <workspace|command>';

export async function restart(args: readonly string[], io: Output = stdio): Promise<number> {
  const parsed = parseCommand(args, {}, RESTART_USAGE);
  if (parsed.positionals.length !== 1) throw new UsageError('name one workspace or command (label, ws/label or id)', RESTART_USAGE);
  return withDaemon(parsed, async (client) => {
    const result = await client.call('restart', { target: parsed.positionals[0]! });
    if (parsed.values.json) printJson(result, io);
    else {
      if (result.restarted.length === 0) io.out.write(`workspace ${result.label} has no command to restart\n`);
      for (const c of result.restarted) io.out.write(`restarted ${c.name}: pid ${c.pid}, run ${c.id}, restart ${c.restarts}\n`);
    }
    return EXIT_OK;
  });
}
