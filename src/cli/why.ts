// `shuma why <cmd|pipeline>`: the causal trail — what happened to it, in words, in order.
import { parseCommand, UsageError } from './cli-args.js';
import { printJson, stdio, withDaemon, type Output } from './client-command.js';
import { EXIT_OK } from './exit-codes.js';
import { clockTime } from './plain-view.js';

export const WHY_USAGE = 'shuma why [--json] <command|pipeline>';

export async function why(args: readonly string[], io: Output = stdio): Promise<number> {
  const parsed = parseCommand(args, {}, WHY_USAGE);
  if (parsed.positionals.length !== 1) throw new UsageError('name one command or pipeline (label, ws/label or id)', WHY_USAGE);
  return withDaemon(parsed, async (client) => {
    const result = await client.call('why', { target: parsed.positionals[0]! });
    if (parsed.values.json) printJson(result, io);
    else {
      io.out.write(`${result.kind} ${result.label} (${result.id})\n`);
      for (const entry of result.entries) io.out.write(`  ${clockTime(entry.at)} ${entry.text}\n`);
    }
    return EXIT_OK;
  });
}
