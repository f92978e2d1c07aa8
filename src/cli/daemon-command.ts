// `shuma daemon [--state-dir DIR] [--socket PATH] [--grace MS] …`: its command line. A directory
// or socket it refuses is a usage error (exit 2) with the fix in the message.
import { isShumaError } from '../protocol/errors.js';
import { numberOption, parseCommand, stringOption, UsageError } from './cli-args.js';
import { daemon } from './daemon.js';
import { EXIT_FAILED, EXIT_USAGE } from './exit-codes.js';

export const DAEMON_USAGE =
  'shuma daemon [--state-dir DIR] [--socket PATH] [--grace MS] [--inspect] [--inspect-port N] [--log-max-bytes N] [--log-keep N] [--log-time] [--keep-finished N]';

const REFUSALS = new Set(['CONTROL_DIR_INVALID', 'SOCKET_PATH_TOO_LONG', 'DAEMON_RUNNING', 'STATE_DIR_LOCKED', 'STATE_DIR_INVALID', 'INVALID_ARGUMENT']);

export async function daemonCommand(args: readonly string[]): Promise<number> {
  const parsed = parseCommand(
    args,
    {
      'state-dir': { type: 'string' },
      grace: { type: 'string' },
      inspect: { type: 'boolean' },
      'inspect-port': { type: 'string' },
      'log-max-bytes': { type: 'string' },
      'log-keep': { type: 'string' },
      'log-time': { type: 'boolean' },
      'keep-finished': { type: 'string' },
    },
    DAEMON_USAGE,
  );
  const inspectPort = numberOption(parsed, 'inspect-port', DAEMON_USAGE);
  if (inspectPort !== undefined && inspectPort > 65535) throw new UsageError(`--inspect-port must be a port number, 0 to 65535 (got ${inspectPort})`, DAEMON_USAGE);
  // Each command's log files: rotated past --log-max-bytes (10 MiB), --log-keep rotated ones (3).
  const maxBytes = numberOption(parsed, 'log-max-bytes', DAEMON_USAGE, 1024);
  const keep = numberOption(parsed, 'log-keep', DAEMON_USAGE);
  // How many finished commands (and pipelines) each workspace keeps listed (createRuntime's keepFinished).
  const keepFinished = numberOption(parsed, 'keep-finished', DAEMON_USAGE);
  if (parsed.positionals.length > 0) throw new UsageError(`unexpected ${JSON.stringify(parsed.positionals[0])}`, DAEMON_USAGE);
  try {
    return await daemon({
      socket: stringOption(parsed, 'socket'),
      stateDir: stringOption(parsed, 'state-dir'),
      graceMs: numberOption(parsed, 'grace', DAEMON_USAGE),
      // --inspect-port implies --inspect; --inspect alone takes a free port.
      inspectPort: inspectPort ?? (parsed.values.inspect ? 0 : undefined),
      keepFinished,
      logFiles: {
        ...(maxBytes === undefined ? {} : { maxBytes }),
        ...(keep === undefined ? {} : { keep }),
        ...(parsed.values['log-time'] ? { timestamps: true } : {}),
      },
    });
  } catch (error) {
    if (!isShumaError(error)) throw error;
    process.stderr.write(`shuma daemon: ${error.message}\n`);
    return REFUSALS.has(error.code) ? EXIT_USAGE : EXIT_FAILED;
  }
}
