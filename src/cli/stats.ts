// `shuma stats [-w]` and `shuma top`: each workspace's memory, CPU and processes, once or live.
import type { StatsEvent } from '../protocol/control-results.js';
import { numberOption, parseCommand, UsageError, type Parsed } from './cli-args.js';
import { duration, printJson, stdio, table, withDaemon, type Output } from './client-command.js';
import { EXIT_OK } from './exit-codes.js';
import { formatBytes } from './live-view.js';
import { clockTime } from './plain-view.js';

export const STATS_USAGE = 'shuma stats [-w] [--every MS] [--json] [workspace]';
export const TOP_USAGE = 'shuma top [--every MS] [--json]';

const percent = (v: number | null | undefined) => (v == null ? '-' : `${v.toFixed(1)}%`);

export function statsText(event: StatsEvent): string {
  const rows = [['WORKSPACE', 'ID', 'STATE', 'CPU', 'RSS', 'PROCS', 'ALIVE', 'SOURCE']];
  for (const ws of event.workspaces) {
    const s = ws.stats;
    rows.push([ws.label, ws.id, ws.state, percent(s?.cpuPercent), formatBytes(s?.rssBytes ?? null), String(s?.processes ?? '-'), s ? `${s.commandsAlive}/${s.commandsTotal}` : '-', s?.source ?? '-']);
  }
  return table(rows);
}

/** `top`'s screen: the workspaces with their figures, each command under its workspace. */
export function topText(event: StatsEvent, now = Date.now()): string {
  const rows = [['NAME', 'STATE', 'PID', 'RESTARTS', 'UPTIME', 'CPU', 'RSS', 'PROCS']];
  for (const ws of event.workspaces) {
    const s = ws.stats;
    rows.push([ws.label, ws.state, '', '', '', percent(s?.cpuPercent), formatBytes(s?.rssBytes ?? null), String(s?.processes ?? '-')]);
    for (const c of ws.commands) {
      rows.push([`  ${c.label}`, c.state, c.pid === null ? '-' : String(c.pid), String(c.restarts), c.alive && c.startedAt !== null ? duration(now - c.startedAt) : '-', '', '', '']);
    }
  }
  return `shuma top — ${clockTime(event.at)} — ${event.workspaces.length} workspaces — Ctrl-C to quit\n${table(rows)}`;
}

/** Streams samples until Ctrl-C (or the daemon ends the stream), drawing each with `draw`. */
async function watch(parsed: Parsed, usage: string, draw: (event: StatsEvent) => void, workspace?: string): Promise<number> {
  const everyMs = numberOption(parsed, 'every', usage, 100) ?? 1000;
  return withDaemon(parsed, async (client) => {
    const { done, cancel } = client.stream('stats', { everyMs, ...(workspace === undefined ? {} : { workspace }) }, (e) => draw(e as StatsEvent));
    const stop = () => cancel();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      await done;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    return EXIT_OK;
  });
}

export async function stats(args: readonly string[], io: Output = stdio): Promise<number> {
  const parsed = parseCommand(args, { watch: { type: 'boolean', short: 'w' }, every: { type: 'string' } }, STATS_USAGE);
  if (parsed.positionals.length > 1) throw new UsageError('name at most one workspace', STATS_USAGE);
  const workspace = parsed.positionals[0];
  const json = parsed.values.json === true;
  if (parsed.values.watch) {
    return watch(parsed, STATS_USAGE, (event) => (json ? printJson(event, io) : io.out.write(`${clockTime(event.at)}\n${statsText(event)}`)), workspace);
  }
  return withDaemon(parsed, async (client) => {
    const event = await client.call('stats', workspace === undefined ? {} : { workspace });
    if (json) printJson(event, io);
    else io.out.write(statsText(event));
    return EXIT_OK;
  });
}

export async function top(args: readonly string[], io: Output = stdio): Promise<number> {
  const parsed = parseCommand(args, { every: { type: 'string' } }, TOP_USAGE);
  if (parsed.positionals.length > 0) throw new UsageError(`unexpected ${JSON.stringify(parsed.positionals[0])}`, TOP_USAGE);
  const json = parsed.values.json === true;
  // A terminal gets one screen redrawn in place; a pipe or a file gets one block per sample.
  const live = !json && io.out.isTTY === true;
  return watch(parsed, TOP_USAGE, (event) => {
    if (json) printJson(event, io);
    else if (live) io.out.write(`\x1b[H\x1b[2J${topText(event)}`);
    else io.out.write(`${topText(event)}\n`);
  });
}
