// `shuma apply <file>`: creates in the running daemon what a spec file (as for `shuma up`)
// describes. All or nothing; a workspace label already running is refused, not duplicated.
import path from 'node:path';
import { parseCommand, UsageError } from './cli-args.js';
import { printJson, stdio, withStartedDaemon, type Output } from './client-command.js';
import { EXIT_OK } from './exit-codes.js';
import { loadSpecFile } from './spec-file.js';

export const APPLY_USAGE = 'shuma apply [--json] <file>';

export async function apply(args: readonly string[], io: Output = stdio): Promise<number> {
  const parsed = parseCommand(args, {}, APPLY_USAGE);
  if (parsed.positionals.length !== 1) throw new UsageError('needs exactly one spec file', APPLY_USAGE);
  // Checked here first, so that a mistake is reported at its file:line:column.
  const file = loadSpecFile(parsed.positionals[0]!);
  // As with `shuma up`, relative paths are the user's, not the daemon's working directory.
  for (const w of file.workspaces) w.spec.cwd = path.resolve(w.spec.cwd ?? '.');
  return withStartedDaemon(parsed, async (client) => {
    // The file's own shape: the daemon checks it again with the same checkSpecFile.
    const data = { workspaces: file.workspaces.map((w) => ({ ...w.spec, commands: w.commands, pipelines: w.pipelines })) };
    const result = await client.call('apply', { file: data });
    if (parsed.values.json) printJson(result, io);
    else {
      for (const ws of result.workspaces) {
        io.out.write(`created workspace ${ws.label} (${ws.id})\n`);
        for (const c of ws.commands) io.out.write(`  started ${ws.label}/${c.label}: pid ${c.pid}\n`);
        for (const p of ws.pipelines) io.out.write(`  started pipeline ${ws.label}/${p.label} (${p.id})\n`);
      }
    }
    return EXIT_OK;
  });
}
