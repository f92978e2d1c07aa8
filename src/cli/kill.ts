// `shuma kill`: stops the daemon as SIGTERM does (every process stopped gracefully, the state
// saved, the socket removed), and returns once it is gone. The next daemon, started by hand, by
// systemd or by a `shuma run`, brings the workspaces back.
import { readFileSync } from 'node:fs';
import { parseCommand, UsageError } from './cli-args.js';
import { ControlClient } from './control-client.js';
import { report, stdio, type Output } from './client-command.js';
import { controlPaths } from './control-paths.js';
import { EXIT_OK } from './exit-codes.js';
import { isShumaError } from '../protocol/errors.js';

export const KILL_USAGE = 'shuma kill [--json]';

/** Exited: no such process, or a zombie its parent has yet to reap. */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat[stat.lastIndexOf(')') + 2] === 'Z';
  } catch {
    return true;
  }
}

export async function kill(args: readonly string[], io: Output = stdio): Promise<number> {
  const parsed = parseCommand(args, {}, KILL_USAGE);
  if (parsed.positionals.length > 0) throw new UsageError(`unexpected ${JSON.stringify(parsed.positionals[0])}`, KILL_USAGE);
  const json = parsed.values.json === true;
  const { socket } = controlPaths({ socket: parsed.values.socket as string | undefined });
  let client: ControlClient;
  try {
    client = await ControlClient.connect(socket);
  } catch (error) {
    // Nothing to stop is what was asked for.
    if (!isShumaError(error) || error.code !== 'NO_DAEMON') return report(error, json, io);
    if (json) io.out.write(`${JSON.stringify({ stopped: false, socket })}\n`);
    else io.out.write(`no shuma daemon was running at ${socket}\n`);
    return EXIT_OK;
  }
  let health;
  try {
    health = await client.call('health', {});
  } catch (error) {
    return report(error, json, io);
  } finally {
    client.close();
  }
  process.kill(health.pid, 'SIGTERM');
  // Its shutdown waits out each process's grace: no deadline here, Ctrl-C leaves it stopping.
  for (let wait = 10; !gone(health.pid); wait = Math.min(wait * 2, 200)) await new Promise((resolve) => setTimeout(resolve, wait));
  if (json) io.out.write(`${JSON.stringify({ stopped: true, pid: health.pid, socket, stateDir: health.stateDir })}\n`);
  else io.out.write(`stopped the shuma daemon (pid ${health.pid}); its state is saved in ${health.stateDir}\n`);
  return EXIT_OK;
}
