// `shuma flush [ws|cmd]`: empties log files (rotated ones too), as `pm2 flush` does.
import { parseCommand, UsageError } from './cli-args.js';
import { printJson, stdio, withDaemon, type Output } from './client-command.js';
import { EXIT_OK } from './exit-codes.js';

export const FLUSH_USAGE = 'shuma flush [--json] [workspace|command]';

export async function flush(args: readonly string[], io: Output = stdio): Promise<number> {
  const parsed = parseCommand(args, {}, FLUSH_USAGE);
  if (parsed.positionals.length > 1) throw new UsageError('name at most one workspace or command', FLUSH_USAGE);
  const target = parsed.positionals[0];
  return withDaemon(parsed, async (client) => {
    const result = await client.call('flush', target === undefined ? {} : { target });
    if (parsed.values.json) printJson(result, io);
    else io.out.write(result.flushed === 'all' ? 'flushed every log file\n' : `flushed the log files of ${result.flushed} ${result.name}\n`);
    return EXIT_OK;
  });
}
