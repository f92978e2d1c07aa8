// Whoever reads the CLI's output may go away (`shuma daemon | head -1`, a closed terminal, a
// `tee` stopped by Ctrl-C). The next write then fails with EPIPE, raised as an 'error' event
// on process.stdout or process.stderr; nobody listening, that event is an uncaught exception
// and the process dies wherever it is — a daemon in the middle of saving its state.

/** How a command lives on without its output. */
export type OutputLoss =
  /** A supervisor (daemon, up): goes on and shuts down as it would have; its lines are dropped. */
  | 'carry-on'
  /** A client (`logs -f | head -1`): nobody wants what it prints any more, it ends quietly. */
  | 'exit';

let installed = false;

/** Listens for write errors on stdout and stderr for the rest of the process's life. */
export function guardOutput(onLoss: OutputLoss, exitCode = 0): void {
  if (installed) return;
  installed = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', () => {
      // Nothing can be said about it: the stream it would be said on may be the one that failed.
      if (onLoss === 'exit') process.exit(exitCode);
    });
  }
}
