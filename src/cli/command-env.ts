// The environment a command started from the command line gets. As PM2 does, the client's own
// environment by default (`FOO=bar shuma run … 'echo $FOO'` prints bar): the daemon's is whatever
// it was started with, which means nothing to the user typing. Then --env-file's lines, then each
// --env, later ones winning. --no-inherit-env leaves the client's out (the daemon's environment
// and the workspace's env remain beneath, as for a command from the API).
import { readFileSync } from 'node:fs';
import { UsageError, type OptionSpec, type Parsed } from './cli-args.js';

export const ENV_OPTIONS: OptionSpec = {
  env: { type: 'string', short: 'e', multiple: true },
  'env-file': { type: 'string', multiple: true },
  'no-inherit-env': { type: 'boolean' },
};

/**
 * Variables of the client that describe the client's own supervision, not the user's intent:
 * SHUMA_STATE_ID marks a process as a daemon's own (orphan detection reads it); a client run
 * under one daemon must not mark what it starts as that daemon's.
 */
const NOT_INHERITED = new Set(['SHUMA_STATE_ID']);

/** `NAME=value` lines; `#` comments, blank lines, `export NAME=…` and quoted values ('…' as is, "…" with \n \" \\). */
export function parseEnvFile(text: string, file: string, usage: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) throw new UsageError(`${file}:${i + 1}: expected NAME=value (got ${JSON.stringify(raw)})`, usage);
    let value = match[2]!;
    if (/^'.*'$/.test(value)) value = value.slice(1, -1);
    else if (/^".*"$/.test(value)) value = value.slice(1, -1).replace(/\\([n"\\])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    else value = value.replace(/\s+#.*$/, '');
    env[match[1]!] = value;
  }
  return env;
}

export function commandEnv(parsed: Parsed, usage: string, client: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  if (parsed.values['no-inherit-env'] !== true) {
    for (const [name, value] of Object.entries(client)) if (value !== undefined && !NOT_INHERITED.has(name)) env[name] = value;
  }
  for (const file of (parsed.values['env-file'] as string[] | undefined) ?? []) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(`--env-file ${file} cannot be read: ${(error as Error).message}`, usage);
    }
    Object.assign(env, parseEnvFile(text, file, usage));
  }
  for (const pair of (parsed.values.env as string[] | undefined) ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--env takes NAME=value (got ${JSON.stringify(pair)})`, usage);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}
