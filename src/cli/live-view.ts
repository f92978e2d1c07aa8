// `shuma up` on a terminal: one line per actor, redrawn in place, the last events below.
import type { WorkspaceStats } from '../protocol/stats.js';
import { eventLine, outputLine, type View } from './plain-view.js';
import type { Tracked } from './tracked.js';

const SPARKS = '▁▂▃▄▅▆▇█';

export function sparkline(values: readonly number[]): string {
  if (values.length === 0) return '';
  const top = Math.max(1, ...values);
  return values.map((v) => SPARKS[Math.min(SPARKS.length - 1, Math.floor((v / top) * (SPARKS.length - 1)))]).join('');
}

export function formatBytes(n: number | null): string {
  if (n === null) return '-';
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(0)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export interface StatsSource {
  /** The latest sample of a workspace, and its recent CPU% values, oldest first. */
  latest(wsId: string): { stats: WorkspaceStats | null; cpu: number[] };
}

export function actorLine(actor: Tracked, stats: StatsSource, now = Date.now()): string {
  const countdown =
    actor.deadline !== null && actor.deadlineName ? `${actor.deadlineName} in ${(Math.max(0, actor.deadline - now) / 1000).toFixed(1)} s` : '';
  const cols = [
    actor.kind.padEnd(9),
    actor.name.padEnd(20),
    actor.state.padEnd(12),
    (actor.kind === 'workspace' ? '' : `pid ${actor.pid ?? '-'}`).padEnd(12),
  ];
  if (actor.kind === 'workspace') {
    const { stats: s, cpu } = stats.latest(actor.ws.id);
    cols.push(
      `cpu ${s?.cpuPercent == null ? '-' : `${s.cpuPercent.toFixed(1)}%`}`.padEnd(11),
      `rss ${formatBytes(s?.rssBytes ?? null)}`.padEnd(14),
      `procs ${s?.processes ?? '-'}`.padEnd(9),
      sparkline(cpu).padEnd(10),
    );
  } else {
    cols.push(`restarts ${actor.restarts}`.padEnd(12));
  }
  cols.push(countdown);
  return cols.join(' ').trimEnd();
}

export function liveView(out: NodeJS.WriteStream, stats: StatsSource, keepEvents = 6, keepOutput = 8): View {
  const events: string[] = [];
  const output: string[] = [];
  const notes: string[] = [];
  let drawn = 0;
  const draw = (actors: readonly Tracked[]) => {
    const width = out.columns || 120;
    const lines = [
      'shuma up — Ctrl-C stops everything',
      ...notes,
      ...actors.map((a) => actorLine(a, stats)),
      '',
      ...events,
      ...(output.length ? ['', ...output] : []),
    ].map((l) => (l.length > width ? l.slice(0, width - 1) : l));
    let text = drawn > 0 ? `\x1b[${drawn}A\r` : '';
    for (const line of lines) text += `\x1b[2K${line}\n`;
    text += '\x1b[J';
    out.write(text);
    drawn = lines.length;
  };
  let last: readonly Tracked[] = [];
  return {
    event: (actor, text) => {
      events.push(eventLine(actor, text));
      if (events.length > keepEvents) events.shift();
      draw(last);
    },
    note: (text) => {
      notes.push(text);
      draw(last);
    },
    // Drawn with the next refresh: a chatty command must not redraw the screen per line.
    output: (line) => {
      output.push(outputLine(line));
      if (output.length > keepOutput) output.shift();
    },
    refresh: (actors) => {
      last = actors;
      draw(actors);
    },
    close: (actors) => draw(actors),
  };
}
