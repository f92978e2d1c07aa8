// `shuma ps`: every workspace, its commands (the latest run of each) and the pipelines.
import type { PsResult } from '../protocol/control-results.js';
import { parseCommand } from './cli-args.js';
import { duration, printJson, stdio, table, withDaemon, type Output } from './client-command.js';
import { EXIT_OK } from './exit-codes.js';

export const PS_USAGE = 'shuma ps [--json]';

export function psText(result: PsResult, now = Date.now()): string {
  if (result.workspaces.length === 0) return 'no workspaces: `shuma run -w <name> -- <program>` or `shuma apply <file>` starts some\n';
  // Where each command runs, only when some workspace is placed on a cluster.
  const nodes = result.workspaces.some((ws) => ws.commands.some((c) => c.node !== undefined));
  const rows: string[][] = [['KIND', 'NAME', 'ID', 'STATE', 'PID', 'RESTARTS', 'UPTIME', 'EXIT', ...(nodes ? ['NODE'] : [])]];
  for (const ws of result.workspaces) {
    // A group that gave up is said beside the workspace's state; why() and --json say why.
    const state = ws.gaveUp && ws.gaveUp.length > 0 ? `${ws.state}; ${ws.gaveUp.map((g) => g.split(':')[0]).join(', ')}` : ws.state;
    rows.push(['workspace', ws.label, ws.id, state, '', '', duration(ws.uptimeMs), '']);
    for (const c of ws.commands) {
      const exit = c.exitSignal ?? (c.exitStatus === null ? '' : String(c.exitStatus));
      // In backoff: how long until the next run, e.g. `backoff 1.6s`.
      const state = c.restartAt ? `${c.state} ${countdown(c.restartAt - now)}` : c.state;
      rows.push([
        'command',
        `${ws.label}/${c.label}`,
        c.id ?? c.commandKey,
        state,
        c.pid === null ? '-' : String(c.pid),
        String(c.restarts),
        c.alive && c.startedAt !== null ? duration(now - c.startedAt) : '-',
        exit,
        ...(nodes ? [c.node ?? ''] : []),
      ]);
    }
    for (const p of result.pipelines.filter((p) => p.workspace.id === ws.id)) {
      rows.push(['pipeline', `${ws.label}/${p.label}`, p.id, p.state, '', '', '', '']);
      // Its nodes by the names `logs` and `why` take (ws/pipeline/node).
      for (const n of p.nodes) {
        const exit = n.exitSignal ?? (n.exitStatus === null ? '' : String(n.exitStatus));
        rows.push(['  node', `${ws.label}/${p.label}/${n.label}`, n.commandId, n.alive ? 'running' : 'exited', n.alive ? String(n.pid) : '-', '', '', exit]);
      }
    }
  }
  return table(rows);
}

/** Tenths of a second below a minute (a backoff is often shorter than one second). */
function countdown(ms: number): string {
  return ms < 60_000 ? `${(Math.max(0, ms) / 1000).toFixed(1)}s` : duration(ms);
}

export async function ps(args: readonly string[], io: Output = stdio): Promise<number> {
  const parsed = parseCommand(args, {}, PS_USAGE);
  return withDaemon(parsed, async (client) => {
    const result = await client.call('ps', {});
    if (parsed.values.json) printJson(result, io);
    else io.out.write(psText(result));
    return EXIT_OK;
  });
}
