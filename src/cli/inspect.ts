// `shuma inspect`: the URL of the daemon's inspector page (started with `shuma daemon --inspect`).
import { parseCommand, UsageError } from './cli-args.js';
import { printJson, stdio, withDaemon, type Output } from './client-command.js';
import { EXIT_FAILED, EXIT_OK } from './exit-codes.js';

export const INSPECT_USAGE = 'shuma inspect [--json]  (the URL of the daemon\'s inspector page)';

export async function inspect(args: readonly string[], io: Output = stdio): Promise<number> {
  const parsed = parseCommand(args, {}, INSPECT_USAGE);
  if (parsed.positionals.length > 0) throw new UsageError(`unexpected ${JSON.stringify(parsed.positionals[0])}`, INSPECT_USAGE);
  return withDaemon(parsed, async (client) => {
    const { inspectorUrl, pid } = await client.call('health', {});
    if (parsed.values.json) printJson({ url: inspectorUrl }, io);
    else if (inspectorUrl) io.out.write(`${inspectorUrl}\n`);
    else {
      // Not started on demand: the page shows every command's output to whoever reaches
      // 127.0.0.1, which the user chooses when starting the daemon.
      io.err.write(`shuma: the daemon (pid ${pid}) serves no inspector: start it with \`shuma daemon --inspect\` (\`shuma kill\` stops this one)\n`);
    }
    return inspectorUrl ? EXIT_OK : EXIT_FAILED;
  });
}
