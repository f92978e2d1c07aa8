// `shuma health`: the daemon's counts (alive workspaces, commands, pipelines, flows) and where it runs.
import { parseCommand, UsageError } from './cli-args.js';
import { duration, printJson, stdio, withDaemon, type Output } from './client-command.js';
import { EXIT_OK } from './exit-codes.js';

export const HEALTH_USAGE = 'shuma health [--json]';

export async function health(args: readonly string[], io: Output = stdio): Promise<number> {
  const parsed = parseCommand(args, {}, HEALTH_USAGE);
  if (parsed.positionals.length > 0) throw new UsageError(`unexpected ${JSON.stringify(parsed.positionals[0])}`, HEALTH_USAGE);
  return withDaemon(parsed, async (client) => {
    const h = await client.call('health', {});
    if (parsed.values.json) printJson(h, io);
    else {
      io.out.write(
        `daemon pid ${h.pid}, up ${duration(h.uptimeMs)}, socket ${h.socket}, state ${h.stateDir}\n` +
          `workspaces ${h.aliveWorkspaces}, commands alive ${h.aliveCommands}, pipelines alive ${h.alivePipelines}, ` +
          `flows ${h.activeFlows}, worker restarts ${h.workerRestarts}, client uid check ${h.peerCheck ? 'on' : 'off'}\n` +
          h.warnings.map((w) => `warning: ${w}\n`).join(''),
      );
    }
    return EXIT_OK;
  });
}
