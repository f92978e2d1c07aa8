// What runs on the node around a step's program when the command has no stdin of its own.
//
// Why: srun always relays its own stdin to the step, and always ends it with a 10-byte "stdin
// EOF" message on its I/O connection to slurmstepd — even for /dev/null, even with --input=none.
// When the program exits before slurmstepd has read that message (a fast program, a loaded
// machine), slurmstepd's I/O thread stops reading (shutdown(SHUT_RD)), flushes the output into
// its socket and exits. Closing a TCP socket with unread received bytes makes Linux send a RST
// and throw away the socket's *unsent* output (TcpExtTCPAbortOnClose counts each): srun then reads
// "Connection reset by peer" mid-stream, prints "_server_read: … got error or unexpected eof
// reading message body", and exits with the task's status 0 — the output silently truncated
// (seq 1 100000 arrived as its first ~22,800 lines, the 128 KiB already in srun's receive buffer).
//
// The wrapper makes the task wait for slurmstepd to have read that EOF before the program runs:
// it reads the step's relayed stdin to its end (which comes as soon as slurmstepd has consumed
// srun's EOF message, a few ms after the step's I/O connection is up), then execs the program
// with /dev/null as its stdin, as a local command without stdin has. From then on srun sends
// nothing more, so slurmstepd closes with nothing unread (a FIN, no RST) and every byte of output
// reaches srun. The program is exec'd: it is the task itself, so signals (slurmstepd signals the
// task's pid, not its children) and its exit status are exactly as without the wrapper.
// Steps fed by a pipeline edge are not wrapped: their program must read the stream as it comes.

/** The marker argv[0] of the wrapper shell, so that ps on a node shows what it is. */
export const STEP_WRAPPER_NAME = 'shuma-step';

// A builtin loop, not cat: nothing to exec before the program on the usual (empty) stdin.
const SCRIPT = 'while read -r _; do :; done; exec "$@" </dev/null';

/**
 * The step's arguments with the wrapper put before its program (the first argument after srun's
 * own `--options`): `sh -c SCRIPT shuma-step [prlimit …] program args…`.
 */
export function startAfterStdinEnds(srunArgs: readonly string[]): string[] {
  const program = srunArgs.findIndex((arg) => !arg.startsWith('--'));
  if (program === -1) return [...srunArgs];
  return [...srunArgs.slice(0, program), 'sh', '-c', SCRIPT, STEP_WRAPPER_NAME, ...srunArgs.slice(program)];
}
