// `shuma up [--inspect] <file>`: its command line (the run itself is up.ts).
import { parseCommand, UsageError } from './cli-args.js';
import { loadSpecFile } from './spec-file.js';
import { up } from './up.js';

export const UP_USAGE = 'shuma up [--inspect] <file>';

export async function upCommand(rest: readonly string[]): Promise<number> {
  const parsed = parseCommand(rest, { inspect: { type: 'boolean' } }, UP_USAGE, { client: false });
  if (parsed.positionals.length !== 1 || parsed.rest !== null) throw new UsageError('needs exactly one spec file', UP_USAGE);
  // A SpecFileError is reported by main (exit code 2).
  return up(loadSpecFile(parsed.positionals[0]!), { inspect: parsed.values.inspect === true });
}
