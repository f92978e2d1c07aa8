// What runs on the node around a step's program when the command has no stdin of its own.
//
// Why: srun relays its own stdin to the step and ends it with a 10-byte "stdin EOF" message on
// its I/O connection to slurmstepd — at once for /dev/null, and at once with --input=none too.
// When the program exits before slurmstepd has read that message (a fast program, a loaded
// machine), slurmstepd's I/O thread stops reading (shutdown(SHUT_RD)), flushes the output into
// its socket and exits. Closing a TCP socket with unread received bytes makes Linux send a RST
// and throw away the socket's *unsent* output (TcpExtTCPAbortOnClose counts each): srun then reads
// "Connection reset by peer" mid-stream, prints "_server_read: … got error or unexpected eof
// reading message body", and exits with the task's status 0 — the output silently truncated
// (seq 1 100000 arrived as its first ~22,800 lines, the 128 KiB already in srun's receive buffer).
//
// So srun is given no EOF to send: its stdin is a pipe the runtime holds open, never writes, and
// closes once srun has ended (step-spawner.ts); slurmstepd closes with nothing unread (a FIN, no
// RST) and every byte of output reaches srun. The program must still read /dev/null, as a local
// command without stdin does, not a pipe that never ends: a shell on the node execs it with
// /dev/null as its stdin. Exec'd, the program is the task itself, so signals (slurmstepd signals
// the task's pid, not its children) and its exit status are exactly as without the shell.
//
// (Before: srun's stdin was /dev/null and the shell read the relayed stdin to its end before it
// exec'd the program. Also lossless, but each step waited for srun's EOF to travel to the node:
// 10-70 ms a step more than bare srun, measured in bench (o) under load.)
// Steps fed by a pipeline edge read their stream themselves and are not wrapped.

/** The marker argv[0] of the wrapper shell, so that ps on a node shows what it is. */
export const STEP_WRAPPER_NAME = 'shuma-step';

const SCRIPT = 'exec "$@" </dev/null';

/**
 * The step's arguments with the wrapper put before its program (the first argument after srun's
 * own `--options`): `sh -c SCRIPT shuma-step [prlimit …] program args…`. srun's stdin must then be
 * a pipe held open until srun ends.
 */
export function programReadsDevNull(srunArgs: readonly string[]): string[] {
  const program = srunArgs.findIndex((arg) => !arg.startsWith('--'));
  if (program === -1) return [...srunArgs];
  return [...srunArgs.slice(0, program), 'sh', '-c', SCRIPT, STEP_WRAPPER_NAME, ...srunArgs.slice(program)];
}
