// `shuma up` when stdout is not a terminal: one line per event, for logs and scripts.
import type { OutputLine } from './output-lines.js';
import type { Tracked } from './tracked.js';

export interface View {
  event(actor: Tracked | null, text: string): void;
  /** A fact that stays in view (the inspector URL): a line of its own, or a fixed header line. */
  note(text: string): void;
  /** A line a command wrote. */
  output(line: OutputLine): void;
  /** Called every refresh period with the actors (the live view redraws; the plain view ignores it). */
  refresh(actors: readonly Tracked[]): void;
  close(actors: readonly Tracked[]): void;
}

export function clockTime(at = Date.now()): string {
  return new Date(at).toISOString().slice(11, 23);
}

/** `12:00:01.250 command   demo/crasher  backoff    exit 1; relaunch in 200 ms (restart 1)` */
export function eventLine(actor: Tracked | null, text: string, at = Date.now()): string {
  if (!actor) return `${clockTime(at)} ${text}`;
  return `${clockTime(at)} ${actor.kind.padEnd(9)} ${actor.name.padEnd(20)} ${actor.state.padEnd(10)} ${text}`.trimEnd();
}

/** `web/api              | listening on 8080`, as `docker compose up` prefixes its services' lines. */
export function outputLine(line: OutputLine): string {
  return `${line.name.padEnd(20)} | ${line.text}`;
}

export function plainView(out: NodeJS.WritableStream): View {
  return {
    event: (actor, text) => out.write(`${eventLine(actor, text)}\n`),
    note: (text) => out.write(`${eventLine(null, text)}\n`),
    output: (line) => out.write(`${outputLine(line)}\n`),
    refresh: () => {},
    close: () => {},
  };
}
