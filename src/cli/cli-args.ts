// Argument parsing shared by the commands: node:util's parseArgs (strict: an unknown option is
// an error, not ignored), the options every client command takes, and `--` for a program's argv.
import { parseArgs } from 'node:util';

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

/** A command line that cannot be run: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** `--help` of a command: its usage is printed, exit code 0. */
export class HelpRequest extends Error {
  constructor(readonly usage: string) {
    super('help');
  }
}

/** Options of every client command: which daemon, and machine-readable output. */
export const COMMON_OPTIONS: OptionSpec = {
  socket: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  /** What followed `--`, untouched (a program and its arguments); null without `--`. */
  rest: string[] | null;
}

export function parseCommand(args: readonly string[], options: OptionSpec, usage: string): Parsed {
  const dash = args.indexOf('--');
  const head = dash === -1 ? [...args] : args.slice(0, dash);
  try {
    const { values, positionals } = parseArgs({ args: head, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
    if (values.help) throw new HelpRequest(usage);
    return { values: values as Parsed['values'], positionals, rest: dash === -1 ? null : args.slice(dash + 1) };
  } catch (error) {
    if (error instanceof HelpRequest) throw error;
    throw new UsageError((error as Error).message.split('\n')[0]!, usage);
  }
}

export function stringOption(parsed: Parsed, name: string): string | undefined {
  const value = parsed.values[name];
  return typeof value === 'string' ? value : undefined;
}

/** A whole number of milliseconds (or bytes, or a count) given on the command line. */
export function numberOption(parsed: Parsed, name: string, usage: string, min = 0): number | undefined {
  const text = stringOption(parsed, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min) {
    throw new UsageError(`--${name} must be a whole number >= ${min} (got ${JSON.stringify(text)})`, usage);
  }
  return value;
}
