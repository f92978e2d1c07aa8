// The exit codes of every `shuma` command, in one place (scripts switch on them).
export const EXIT_OK = 0;
/** The operation failed, or its target was not found (a client command); something failed (`up`). */
export const EXIT_FAILED = 1;
/** A usage error or input that is not valid (an option, a spec, a directory the daemon refuses). */
export const EXIT_USAGE = 2;
/** No daemon answers at the socket. */
export const EXIT_NO_DAEMON = 3;
