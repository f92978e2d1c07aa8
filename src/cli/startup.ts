// `shuma startup [--install] [--path FILE]`: a systemd unit that runs `shuma daemon` at boot, as
// `pm2 startup` makes one. As root a system unit (multi-user.target); otherwise a user unit,
// which starts at boot only with lingering enabled (said in the output). The unit names this
// node and this main.js by absolute path, and this SHUMA_HOME: the daemon it starts is the one
// the client commands of this user find.
import { mkdirSync, writeFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommand, stringOption, UsageError } from './cli-args.js';
import { stdio, type Output } from './client-command.js';
import { shumaHome } from './control-paths.js';
import { EXIT_OK } from './exit-codes.js';

export const STARTUP_USAGE = 'shuma startup [--install] [--path FILE]  (prints the systemd unit; --install writes it)';

export interface Unit {
  text: string;
  /** Where it belongs. */
  file: string;
  /** What enables it once written. */
  enable: string[];
}

/** systemd quotes: a word with spaces or quotes in double quotes, \ and " escaped. */
function quote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `"${word.replace(/[\\"]/g, '\\$&')}"`;
}

export function systemdUnit(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? 0): Unit {
  const system = uid === 0;
  const home = shumaHome(env);
  const main = fileURLToPath(new URL('./main.js', import.meta.url));
  const user = userInfo().username;
  const ctl = system ? 'systemctl' : 'systemctl --user';
  const text = [
    '[Unit]',
    `Description=shuma daemon: the supervised processes of ${user}`,
    'After=network.target',
    '',
    '[Service]',
    'Type=simple',
    ...(system ? [`User=${user}`] : []),
    `Environment=SHUMA_HOME=${quote(home)}`,
    `ExecStart=${quote(process.execPath)} ${quote(main)} daemon`,
    // SIGTERM to the daemon alone: it stops its processes itself, within their grace, and saves
    // the state; whatever is left after the timeout is killed.
    'KillMode=mixed',
    'TimeoutStopSec=60',
    'Restart=on-failure',
    'RestartSec=2',
    '',
    '[Install]',
    `WantedBy=${system ? 'multi-user.target' : 'default.target'}`,
    '',
  ].join('\n');
  const file = system ? '/etc/systemd/system/shuma.service' : path.join(env.XDG_CONFIG_HOME || path.join(homedir(), '.config'), 'systemd/user/shuma.service');
  const enable = [`${ctl} daemon-reload`, `${ctl} enable --now shuma`, ...(system ? [] : [`loginctl enable-linger ${user}   # so that it starts at boot, not at your first login`])];
  return { text, file, enable };
}

export async function startup(args: readonly string[], io: Output = stdio): Promise<number> {
  const parsed = parseCommand(args, { install: { type: 'boolean' }, path: { type: 'string' } }, STARTUP_USAGE, { client: false });
  if (parsed.positionals.length > 0) throw new UsageError(`unexpected ${JSON.stringify(parsed.positionals[0])}`, STARTUP_USAGE);
  const unit = systemdUnit();
  const file = path.resolve(stringOption(parsed, 'path') ?? unit.file);
  if (!parsed.values.install) {
    io.out.write(`# ${file}  (\`shuma startup --install\` writes it)\n${unit.text}`);
    io.err.write(`then: ${unit.enable.join('; ')}\n`);
    return EXIT_OK;
  }
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, unit.text, { mode: 0o644 });
  } catch (error) {
    throw new UsageError(`cannot write ${file}: ${(error as Error).message} (run as the user the daemon is for, or pass --path)`, STARTUP_USAGE);
  }
  io.out.write(`wrote ${file}\nenable it with:\n${unit.enable.map((c) => `  ${c}\n`).join('')}`);
  return EXIT_OK;
}
