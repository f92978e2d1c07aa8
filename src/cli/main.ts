#!/usr/bin/env node
// The `shuma` command line. Each command's module is loaded only when it runs: a client command
// (`ps`, `logs`…) then starts without loading the runtime, which is most of its latency.
import { readFileSync } from 'node:fs';
import { HelpRequest, UsageError } from './cli-args.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import { COMMANDS } from './commands.js';
import { guardOutput } from './output-guard.js';
import { closest } from './suggest.js';

export const HELP = `shuma — supervise operating-system processes as actors

Usage:
  shuma up [--inspect] <file>   run the workspaces, commands and pipelines of a spec file
                                (YAML or JSON) in the foreground, until all of them have
                                ended or Ctrl-C / SIGTERM stops everything gracefully
  shuma daemon [--state-dir DIR] [--socket PATH] [--grace MS] [--inspect]
                                run the runtime in the foreground with its state saved, serving
                                the commands below on a unix socket; SIGINT/SIGTERM stop it
  shuma kill                    stop the daemon gracefully (its state saved)
  shuma startup [--install]     a systemd unit that starts the daemon at boot
  shuma inspect                 the URL of the daemon's inspector (shuma daemon --inspect)
  shuma ps                      workspaces, their commands (state, pid, restarts) and pipelines
  shuma run -w <ws> [--label|--name L] [--restart always|on-failure] [--backoff-ms N] [--max-restarts N]
            [--env K=V]… [--env-file F]… [--no-inherit-env] [--cwd DIR] -- <program> [args…]
                                start a command (a new workspace label makes the workspace);
                                it gets your environment, as with PM2
  shuma logs [-f] [--stderr|--both] [--lines N | --tail BYTES] <command>
                                what a command wrote, across its restarts and the daemon's
                                (from its files in the state directory); -f: and what it writes next
  shuma flush [ws|command]      empty log files (all of them without a name)
  shuma stop [--grace MS] <ws|pipeline|command>
                                SIGTERM its processes, SIGKILL after the grace (default 1000 ms);
                                a command stopped alone stays listed (restart runs it again)
  shuma restart <ws|command>    a new run of the command now (of each command of the workspace)
  shuma delete [--grace MS] <command>
                                stop one command and forget it
  shuma stats [-w] [--every MS] [ws]
                                memory, CPU and processes per workspace; -w: again every MS
  shuma top [--every MS]        a live screen of workspaces and commands
  shuma pipeline run -w <ws> (--file F | -- prog args '|' prog args…)
  shuma pipeline save <name> -w <ws> (--file F | -- …) | ls | run-saved <name> [-w ws] | rm <name>
  shuma pipeline stop <pipeline> [--grace MS]
  shuma health                  the daemon's counts, pid, socket and state directory
  shuma apply [--prune] [--dry-run] <file>
                                converge the daemon on a spec file (as kubectl apply): create
                                what is missing, leave what matches, restart what differs; one
                                line per object; --prune removes what the file's workspaces no
                                longer list; --dry-run says what it would do
  shuma describe <command>      one command in full: spec, env, limits, restart policy and count,
                                state and readiness, pid, last exits, log files
  shuma why <command|pipeline>  the causal trail: what happened to it and why
  shuma --help | help <command>  this help, or a command's
  shuma --version               the version

Names: a workspace is named by its id or its label; a command or pipeline by its id, its label,
or ws/label. A label that names more than one is an error listing the ids.

Every client command takes --json (one JSON document; JSON lines for -f, -w and top),
--socket PATH and --help. The daemon lives in $SHUMA_HOME (default ~/.shuma, mode 0700): the
socket shuma.sock (mode 0600) and the state in state/. run, pipeline and apply start a daemon
when none runs (its output in $SHUMA_HOME/daemon.log; --no-daemon-start refuses instead).

On a terminal, 'up' shows a live view (one line per actor: state, pid, restarts, CPU%,
RSS, a pending backoff or TTL counting down, the last lines the commands wrote); otherwise
it prints one line per event, and each line a command writes prefixed by its name.
  --inspect    serve the inspector page on 127.0.0.1 (a free port) and print its URL

Exit codes:
  0  every command and pipeline succeeded (up); the operation was done (client commands)
  1  some command or pipeline failed, gave up, or was stopped (up); the operation failed or
     its target was not found (client commands)
  2  usage error, or a spec file that cannot be read or is not valid (file:line:column: field …),
     or a directory or socket path the daemon refuses
  3  no daemon answers at the socket (start one with \`shuma daemon\`, or let \`shuma run\` start it)
`;

/** The version in the package.json this file was installed with. */
export function version(): string {
  return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

export async function main(args: readonly string[]): Promise<number> {
  if (args.length === 0 || args[0] === '--help' || args[0] === '-h') {
    process.stdout.write(HELP);
    return args.length === 0 ? EXIT_USAGE : EXIT_OK;
  }
  if (args[0] === '--version' || args[0] === '-V' || args[0] === 'version') {
    process.stdout.write(`${version()}\n`);
    return EXIT_OK;
  }
  // `shuma help run` is `shuma run --help`.
  if (args[0] === 'help') return args.length === 1 ? main(['--help']) : main([args[1]!, '--help']);
  const [command, ...rest] = args;
  guardOutput(command === 'up' || command === 'daemon' ? 'carry-on' : 'exit');
  const load = Object.hasOwn(COMMANDS, command!) ? COMMANDS[command!] : undefined;
  if (!load) {
    const near = command!.startsWith('-') ? undefined : closest(command!, Object.keys(COMMANDS));
    process.stderr.write(
      `shuma: ${command!.startsWith('-') ? 'unknown option' : 'unknown command'} '${command}'${near ? `; did you mean 'shuma ${near}'?` : ''}\n` +
        `commands: ${Object.keys(COMMANDS).join(', ')}; shuma --help says more\n`,
    );
    return EXIT_USAGE;
  }
  if (command !== 'up' && command !== 'daemon') {
    // msgpackr looks for its optional native addon at load (a directory search that fails when it
    // is not built): ~30 ms of a client's ~200 ms, for a speed-up that only large string-heavy
    // decodes see. A client decodes one small answer.
    process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED ??= 'true';
  }
  try {
    return await (await load())(rest);
  } catch (error) {
    if (error instanceof HelpRequest) {
      process.stdout.write(`usage: ${error.usage}\n`);
      return EXIT_OK;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`shuma ${command}: ${error.message}\nusage: ${error.usage}\n`);
      return EXIT_USAGE;
    }
    // A spec file that cannot be read or is not valid: file:line:column and the field.
    if ((error as Error).name === 'SpecFileError') {
      process.stderr.write(`shuma: ${(error as Error).message}\n`);
      return EXIT_USAGE;
    }
    throw error;
  }
}

const code = await main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`shuma: ${(error as Error).stack ?? String(error)}\n`);
  return EXIT_FAILED;
});
process.stdout.write('', () => process.exit(code));
