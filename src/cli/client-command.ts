// What every client command does around its request: find the daemon, connect, turn a failure
// into a message and an exit code, print JSON when asked.
import { isShumaError } from '../protocol/errors.js';
import { ControlClient } from './control-client.js';
import { controlPaths } from './control-paths.js';
import { autoStartDisabled, startDaemonFor } from './daemon-start.js';
import { type Parsed, UsageError } from './cli-args.js';
import { EXIT_FAILED, EXIT_NO_DAEMON, EXIT_USAGE } from './exit-codes.js';

export interface Output {
  out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  err: NodeJS.WritableStream;
}

export const stdio: Output = { out: process.stdout, err: process.stderr };

/** Errors that mean "what you asked is not valid", as opposed to "it did not work". */
const USAGE_CODES = new Set(['INVALID_SPEC', 'INVALID_ARGUMENT', 'SOCKET_PATH_TOO_LONG', 'BAD_REQUEST', 'AMBIGUOUS_NAME']);

/** Prints why a command failed (and a JSON document with --json); returns its exit code. */
export function report(error: unknown, json: boolean, io: Output = stdio): number {
  if (error instanceof UsageError) {
    io.err.write(`shuma: ${error.message}\nusage: ${error.usage}\n`);
    return EXIT_USAGE;
  }
  if (!isShumaError(error)) throw error;
  if (json) io.out.write(`${JSON.stringify({ ok: false, error: { code: error.code, message: error.message } })}\n`);
  io.err.write(`shuma: ${error.message}\n`);
  if (error.code === 'NO_DAEMON') return EXIT_NO_DAEMON;
  return USAGE_CODES.has(error.code) ? EXIT_USAGE : EXIT_FAILED;
}

/**
 * Runs `work` with a connection to the daemon that `--socket` or SHUMA_HOME selects. `start`: a
 * command that creates something starts a daemon when none answers (unless --no-daemon-start or
 * SHUMA_NO_DAEMON_START); see daemon-start.ts for why the others do not.
 */
export async function withDaemon(parsed: Parsed, work: (client: ControlClient) => Promise<number>, o: { start?: boolean; io?: Output } = {}): Promise<number> {
  const json = parsed.values.json === true;
  const io = o.io ?? stdio;
  let client: ControlClient;
  try {
    const socket = parsed.values.socket as string | undefined;
    const paths = controlPaths({ socket });
    try {
      client = await ControlClient.connect(paths.socket);
    } catch (error) {
      if (!o.start || parsed.values['no-daemon-start'] === true || autoStartDisabled() || !isShumaError(error) || error.code !== 'NO_DAEMON') throw error;
      client = await startDaemonFor(paths, socket, (line) => io.err.write(`${line}\n`));
    }
  } catch (error) {
    return report(error, json, io);
  }
  try {
    return await work(client);
  } catch (error) {
    return report(error, json, io);
  } finally {
    client.close();
  }
}

/** withDaemon for a command that creates something: it starts a daemon when none runs. */
export function withStartedDaemon(parsed: Parsed, work: (client: ControlClient) => Promise<number>): Promise<number> {
  return withDaemon(parsed, work, { start: true });
}

export function printJson(value: unknown, io: Output = stdio): void {
  io.out.write(`${JSON.stringify(value, bufferAsText)}\n`);
}

/** Log bytes in JSON are text (UTF-8, as a terminal would show them). */
function bufferAsText(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
    return Buffer.from((value as { data: number[] }).data).toString('utf8');
  }
  return value;
}

/** `5s`, `3m`, `2h`, `4d`: a width a table column can hold. */
export function duration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '-';
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** Left-aligned columns, as wide as their widest cell. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}
