// `shuma logs [-f] <cmd>`: what a command wrote (the ring buffer's tail); with -f, what it writes
// from now on too, across its relaunches, until it ends for good or Ctrl-C.
import type { LogsEvent } from '../protocol/control-results.js';
import { isShumaError, ShumaError } from '../protocol/errors.js';
import { numberOption, parseCommand, UsageError } from './cli-args.js';
import { printJson, stdio, withDaemon, type Output } from './client-command.js';
import { EXIT_OK } from './exit-codes.js';

export const LOGS_USAGE = 'shuma logs [-f] [--stderr | --both] [--lines N | --tail BYTES] [--json] <command>';

export async function logs(args: readonly string[], io: Output = stdio): Promise<number> {
  const parsed = parseCommand(
    args,
    { follow: { type: 'boolean', short: 'f' }, stderr: { type: 'boolean' }, both: { type: 'boolean' }, tail: { type: 'string' }, lines: { type: 'string', short: 'n' } },
    LOGS_USAGE,
  );
  if (parsed.positionals.length !== 1) throw new UsageError('name one command (its label, ws/label or id; `shuma ps` lists them)', LOGS_USAGE);
  if (parsed.values.stderr && parsed.values.both) throw new UsageError('--stderr and --both exclude each other', LOGS_USAGE);
  const stream = parsed.values.both ? 'both' : parsed.values.stderr ? 'stderr' : 'stdout';
  const tailBytes = numberOption(parsed, 'tail', LOGS_USAGE);
  const lines = numberOption(parsed, 'lines', LOGS_USAGE);
  if (lines !== undefined && tailBytes !== undefined) throw new UsageError('--lines and --tail exclude each other', LOGS_USAGE);
  const json = parsed.values.json === true;
  const request = {
    command: parsed.positionals[0]!,
    stream,
    ...(tailBytes === undefined ? {} : { tailBytes }),
    ...(lines === undefined ? {} : { lines }),
  } as const;
  return withDaemon(parsed, async (client) => {
    if (!parsed.values.follow) {
      const result = await client.call('logs', request);
      if (json) printJson(result, io);
      else io.out.write(result.data);
      return EXIT_OK;
    }
    const show = (raw: unknown) => {
      const event = raw as LogsEvent;
      if (json) printJson(event, io);
      else {
        if (event.skipped) io.err.write(`shuma: [${event.skipped} bytes were written faster than they could be shown, and skipped]\n`);
        if (event.data && event.data.length > 0) io.out.write(event.data);
      }
    };
    const { done, cancel } = client.stream('logs', { ...request, follow: true }, show);
    const stop = () => cancel();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      const end = await done;
      if (json) printJson(end, io);
    } catch (error) {
      // The daemon stopped under us (`shuma kill`, a restart): -f cannot outlive it. What the
      // command writes meanwhile goes to its files; `shuma logs` shows it once a daemon serves.
      if (isShumaError(error) && error.code === 'NO_DAEMON') {
        throw new ShumaError('NO_DAEMON', 'the daemon stopped, and -f with it: its commands stopped too (a new daemon starts them again); `shuma logs -f` again once one serves shows what they wrote, from their files');
      }
      throw error;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    return EXIT_OK;
  });
}
