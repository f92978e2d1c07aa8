// `shuma describe <cmd>`: one command in full — spec, the environment it starts with, limits,
// restart policy and count, state and readiness, pid, last exits, log files.
import type { CommandDescription } from '../protocol/command-description.js';
import { parseCommand, UsageError } from './cli-args.js';
import { printJson, stdio, withDaemon, type Output } from './client-command.js';
import { EXIT_OK } from './exit-codes.js';
import { clockTime } from './plain-view.js';

export const DESCRIBE_USAGE = 'shuma describe [--json] <command>';

export async function describe(args: readonly string[], io: Output = stdio): Promise<number> {
  const parsed = parseCommand(args, {}, DESCRIBE_USAGE);
  if (parsed.positionals.length !== 1) throw new UsageError('name one command (label, ws/label or id)', DESCRIBE_USAGE);
  return withDaemon(parsed, async (client) => {
    const d = await client.call('describe', { target: parsed.positionals[0]! });
    if (parsed.values.json) printJson(d, io);
    else io.out.write(describeText(d));
    return EXIT_OK;
  });
}

function exitText(run: CommandDescription['runs'][number]): string {
  if (run.alive) return 'running';
  if (!run.exit) return 'ended';
  const how = run.exit.signal ? `killed by ${run.exit.signal}` : `exited ${run.exit.code}`;
  return `${how} (status ${run.exit.status})${run.reason ? `, ${run.reason}` : ''}`;
}

export function describeText(d: CommandDescription): string {
  const p = d.restartPolicy;
  const policy = p.always ? 'always' : p.onFailure ? 'on-failure' : 'never';
  const lines = [
    `command ${d.workspace.label}/${d.label} (${d.id})`,
    `  key        ${d.commandKey}`,
    `  state      ${d.state}${d.ready === null ? '' : d.ready ? ', ready' : ', not ready'}${d.restartAt ? `, relaunch at ${clockTime(d.restartAt)}` : ''}`,
    `  pid        ${d.pid ?? '-'}`,
    `  program    ${d.file} ${(d.spec.argv ?? []).map((a) => JSON.stringify(a)).join(' ')}`.trimEnd(),
    `  cwd        ${d.cwd}`,
    `  restart    ${policy} (backoff ${p.backoffMs}-${p.maxBackoffMs} ms, max restarts ${p.maxRestarts || 'unlimited'}, reset after ${p.resetAfterMs} ms); restarts: ${d.restarts}`,
    `  limits     ${d.limits ? Object.entries(d.limits).map(([k, v]) => `${k}=${v}`).join(' ') : 'none'} (its workspace's)`,
  ];
  if (d.spec.ready) lines.push(`  ready when ${JSON.stringify(d.spec.ready)}`);
  if (d.spec.dependsOn?.length) lines.push(`  dependsOn  ${d.spec.dependsOn.map((dep) => `${dep.label} (${dep.condition ?? 'started'})`).join(', ')}`);
  lines.push(`  env        ${Object.keys(d.env).length} variables${d.spec.env ? `; its own: ${Object.entries(d.spec.env).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''} (--json lists all)`);
  lines.push(`  logs       ${d.logFiles ? `${d.logFiles.stdout}\n             ${d.logFiles.stderr}` : 'in memory only (no state directory)'}`);
  lines.push(`  runs       (last ${d.runs.length}, newest last)`);
  for (const run of d.runs) lines.push(`    ${clockTime(run.startedAt)} pid ${run.pid} ${exitText(run)}  ${run.id}`);
  return `${lines.join('\n')}\n`;
}
