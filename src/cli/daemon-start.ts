// A daemon started on first use, as PM2 starts its own: a command that creates something and finds
// no daemon starts one, detached (it outlives the command; its output goes to daemon.log in
// $SHUMA_HOME), says so in one line, and waits for it to answer. Queries (`ps`, `logs`…) do not:
// a new daemon brings back the saved workspaces and relaunches their processes, which a look at
// the state must not do behind the user's back.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ShumaError } from '../protocol/errors.js';
import { ControlClient } from './control-client.js';
import { ensurePrivateDir, type ControlPaths } from './control-paths.js';

export const DAEMON_LOG = 'daemon.log';
/** How long a starting daemon may take to answer (it restores the saved workspaces first). */
const START_TIMEOUT_MS = 30_000;

/** Set (to anything but 0) to make client commands refuse rather than start a daemon (as --no-daemon-start). */
export function autoStartDisabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.SHUMA_NO_DAEMON_START !== undefined && env.SHUMA_NO_DAEMON_START !== '' && env.SHUMA_NO_DAEMON_START !== '0';
}

function tail(file: string, lines = 5): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * Starts `shuma daemon` for `paths` in the background and connects to it. `say` gets the one line
 * that tells the user. A daemon that another client started meanwhile is as good as ours.
 */
export async function startDaemonFor(paths: ControlPaths, socketOption: string | undefined, say: (line: string) => void): Promise<ControlClient> {
  ensurePrivateDir(paths.home);
  const log = path.join(paths.home, DAEMON_LOG);
  const fd = openSync(log, 'a', 0o600);
  let child;
  try {
    const main = fileURLToPath(new URL('./main.js', import.meta.url));
    child = spawn(process.execPath, [main, 'daemon', ...(socketOption === undefined ? [] : ['--socket', socketOption])], {
      detached: true,
      stdio: ['ignore', fd, fd],
      // Its own cwd, not the directory the user happened to be in (which they may remove).
      cwd: paths.home,
      env: { ...process.env, SHUMA_HOME: paths.home },
    });
  } finally {
    closeSync(fd);
  }
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  child.unref();

  const deadline = Date.now() + START_TIMEOUT_MS;
  let wait = 10;
  for (;;) {
    // Read before trying: ours may have given up because another daemon won the socket, which
    // this try then finds.
    const gaveUp = exited !== undefined;
    try {
      const client = await ControlClient.connect(paths.socket);
      // The pid of the daemon that answers: another client's may have won the socket from ours.
      const { pid } = await client.call('health', {}).catch((error: unknown) => {
        client.close();
        throw error;
      });
      say(`shuma: no daemon was running: started one (pid ${pid}, its output in ${log}; \`shuma kill\` stops it)`);
      return client;
    } catch (error) {
      if (!(error instanceof ShumaError) || error.code !== 'NO_DAEMON') throw error;
    }
    if (gaveUp || Date.now() > deadline) {
      const why = exited !== undefined ? `it exited with code ${exited}` : `it did not answer within ${START_TIMEOUT_MS / 1000} s`;
      throw new ShumaError('NO_DAEMON', `the daemon started for ${paths.socket} is not serving (${why}); its output, in ${log}:\n${tail(log)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(wait * 2, 200);
  }
}
