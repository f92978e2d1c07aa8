// `shuma up [--inspect] <file>`: its command line (the run itself is up.ts).
import { EXIT_USAGE } from './exit-codes.js';
import { loadSpecFile } from './spec-file.js';
import { up } from './up.js';

export async function upCommand(rest: readonly string[]): Promise<number> {
  const inspect = rest.includes('--inspect');
  const unknown = rest.filter((a) => a.startsWith('-') && a !== '--inspect');
  const files = rest.filter((a) => !a.startsWith('-'));
  if (unknown.length > 0 || files.length !== 1) {
    process.stderr.write(`shuma up: ${unknown.length ? `unknown option ${unknown[0]}` : 'needs exactly one spec file'}; usage: shuma up [--inspect] <file>\n`);
    return EXIT_USAGE;
  }
  // A SpecFileError is reported by main (exit code 2).
  return up(loadSpecFile(files[0]!), { inspect });
}
