// Argument parsing shared by the commands: node:util's parseArgs (strict: an unknown option is
// an error, not ignored), the options every client command takes, and `--` for a program's argv.
import { parseArgs } from 'node:util';
import { closest } from './suggest.js';

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
  // Refuse (exit 3) rather than start a daemon when none runs.
  'no-daemon-start': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  /** What followed `--`, untouched (a program and its arguments); null without `--`. */
  rest: string[] | null;
}

/** PM2's word for a label: `--name` is accepted wherever `--label` is. */
const ALIASES: Record<string, string> = { name: 'label' };

function optionName(name: string, spec: OptionSpec[string]): string {
  return `--${name}${spec.short ? `/-${spec.short}` : ''}`;
}

/** Every option a command takes, as its usage would list them. */
function validOptions(options: OptionSpec): string {
  return Object.entries(options)
    .filter(([name]) => !ALIASES[name])
    .map(([name, spec]) => `${optionName(name, spec)}${Object.entries(ALIASES).filter(([, to]) => to === name).map(([alias]) => ` (or --${alias})`).join('')}`)
    .join(', ');
}

/**
 * Checks each option before node:util's parser does, so that a mistake is named in our words:
 * which option, and what is valid (its own message suggests quoting the option as a program
 * argument, which is rarely the fix).
 */
function checkOptions(head: string[], options: OptionSpec, usage: string): void {
  const { tokens } = parseArgs({ args: head, options, allowPositionals: true, strict: false, tokens: true });
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) throw new HelpRequest(usage);
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const spec = options[token.name];
    if (!spec) {
      const near = closest(token.name, Object.keys(options));
      throw new UsageError(
        `unknown option ${token.rawName}${near ? ` (did you mean --${near}?)` : ''}; valid options: ${validOptions(options)}`,
        usage,
      );
    }
    if (spec.type === 'string' && (token.value === undefined || (!token.inlineValue && token.value.startsWith('-') && token.value !== '-'))) {
      throw new UsageError(
        `${token.rawName} needs a value${token.value === undefined ? '' : ` (got the option ${token.value}; a value that starts with - is written --${token.name}=${token.value})`}`,
        usage,
      );
    }
    if (spec.type === 'boolean' && token.inlineValue) throw new UsageError(`${token.rawName} takes no value (got ${token.rawName}=${token.value})`, usage);
  }
}

/**
 * Parses a command's options (`client`: it also takes --socket and --json, as every command that
 * talks to the daemon does) and splits off what follows `--`.
 */
export function parseCommand(args: readonly string[], options: OptionSpec, usage: string, o: { client?: boolean } = {}): Parsed {
  const dash = args.indexOf('--');
  const head = dash === -1 ? [...args] : args.slice(0, dash);
  const all: OptionSpec = { ...options, ...(o.client === false ? { help: COMMON_OPTIONS.help! } : COMMON_OPTIONS) };
  for (const [alias, target] of Object.entries(ALIASES)) if (all[target] && !all[alias]) all[alias] = { type: all[target]!.type };
  checkOptions(head, all, usage);
  let values: Parsed['values'];
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: head, options: all, allowPositionals: true, strict: true }) as { values: Parsed['values']; positionals: string[] });
  } catch (error) {
    // What checkOptions did not foresee: node's own first line.
    throw new UsageError((error as Error).message.split('\n')[0]!, usage);
  }
  for (const [alias, target] of Object.entries(ALIASES)) {
    if (values[alias] === undefined || options[alias]) continue;
    if (values[target] !== undefined && values[target] !== values[alias]) {
      throw new UsageError(`--${alias} is another name for --${target}: give one of them (got ${JSON.stringify(values[alias])} and ${JSON.stringify(values[target])})`, usage);
    }
    values[target] = values[alias];
    delete values[alias];
  }
  return { values, positionals, rest: dash === -1 ? null : args.slice(dash + 1) };
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
