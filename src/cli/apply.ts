// `shuma apply [--prune] [--dry-run] <file>`: converges the running daemon on what a spec file
// (as for `shuma up`) describes, as `kubectl apply` does, and prints one line per object.
import path from 'node:path';
import { applySpecOf, actionText } from '../protocol/apply-spec.js';
import { parseCommand, UsageError } from './cli-args.js';
import { printJson, stdio, withStartedDaemon, type Output } from './client-command.js';
import { EXIT_OK } from './exit-codes.js';
import { loadSpecFile } from './spec-file.js';

export const APPLY_USAGE = 'shuma apply [--prune] [--dry-run] [--json] <file>';

export async function apply(args: readonly string[], io: Output = stdio): Promise<number> {
  const parsed = parseCommand(args, { prune: { type: 'boolean' }, 'dry-run': { type: 'boolean' } }, APPLY_USAGE);
  if (parsed.positionals.length !== 1) throw new UsageError('needs exactly one spec file', APPLY_USAGE);
  // Checked here first, so that a mistake is reported at its file:line:column.
  const file = loadSpecFile(parsed.positionals[0]!);
  // As with `shuma up`, relative paths are the user's, not the daemon's working directory.
  for (const w of file.workspaces) w.spec.cwd = path.resolve(w.spec.cwd ?? '.');
  return withStartedDaemon(parsed, async (client) => {
    // The daemon checks it again, with the same checks (rt.apply's).
    const result = await client.call('apply', {
      file: applySpecOf(file),
      ...(parsed.values.prune === true ? { prune: true } : {}),
      ...(parsed.values['dry-run'] === true ? { dryRun: true } : {}),
    });
    if (parsed.values.json) printJson(result, io);
    else {
      for (const action of result.actions) io.out.write(`${actionText(action)}${action.id && action.action !== 'unchanged' ? ` [${action.id}]` : ''}\n`);
      if (result.dryRun) io.out.write('(dry run: nothing was changed)\n');
    }
    return EXIT_OK;
  });
}
