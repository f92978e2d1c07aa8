#!/usr/bin/env node
// The `shuma` command line.
import { SpecFileError, loadSpecFile } from './spec-file.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, up } from './up.js';

export const HELP = `shuma — supervise operating-system processes as actors

Usage:
  shuma up [--inspect] <file>   run the workspaces, commands and pipelines of a spec file
                                (YAML or JSON) in the foreground, until all of them have
                                ended or Ctrl-C / SIGTERM stops everything gracefully
  shuma --help                  this help

On a terminal, 'up' shows a live view (one line per actor: state, pid, restarts, CPU%,
RSS, a pending backoff or TTL counting down); otherwise it prints one line per event.
  --inspect    serve the inspector page on 127.0.0.1 (a free port) and print its URL

Exit codes:
  0  every command and pipeline succeeded (exit status 0)
  1  some command or pipeline failed, gave up, or was stopped (SIGINT/SIGTERM before it ended)
  2  usage error, or a spec file that cannot be read or is not valid (file:line:column: field …)
`;

export async function main(args: readonly string[]): Promise<number> {
  if (args.length === 0 || args[0] === '--help' || args[0] === '-h' || args[0] === 'help') {
    process.stdout.write(HELP);
    return args.length === 0 ? EXIT_USAGE : EXIT_OK;
  }
  const [command, ...rest] = args;
  if (command !== 'up') {
    process.stderr.write(`shuma: unknown command '${command}'; see shuma --help\n`);
    return EXIT_USAGE;
  }
  const inspect = rest.includes('--inspect');
  const unknown = rest.filter((a) => a.startsWith('-') && a !== '--inspect');
  const files = rest.filter((a) => !a.startsWith('-'));
  if (unknown.length > 0 || files.length !== 1) {
    process.stderr.write(`shuma up: ${unknown.length ? `unknown option ${unknown[0]}` : 'needs exactly one spec file'}; usage: shuma up [--inspect] <file>\n`);
    return EXIT_USAGE;
  }
  let spec;
  try {
    spec = loadSpecFile(files[0]!);
  } catch (error) {
    if (error instanceof SpecFileError) {
      process.stderr.write(`shuma: ${error.message}\n`);
      return EXIT_USAGE;
    }
    throw error;
  }
  return up(spec, { inspect });
}

const code = await main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`shuma: ${(error as Error).stack ?? String(error)}\n`);
  return EXIT_FAILED;
});
process.stdout.write('', () => process.exit(code));
