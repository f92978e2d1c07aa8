// What a command wrote. Named by a run's id: that run's ring, as it always was. Named by the
// command (its key, label or ws/label): every run of it, from its log files when the runtime
// has them (so across relaunches and daemon restarts), from its runs' rings otherwise.
import { ShumaError } from '../../protocol/errors.js';
import { lastLines } from '../../protocol/log-lines.js';
import type { RunEntry } from '../processes/process-table.js';
import type { CommandControl } from './command-control.js';
import type { CoreParts } from './core-parts.js';
import { workspaceEntry } from './guards.js';

export type Stream = 'stdout' | 'stderr' | 'both';

export interface LogQuery {
  stream: Stream;
  /** The last this many bytes of each stream; 0: all that is kept (a run's ring, or one ring's worth of file). */
  tailBytes: number;
  /** The last this many lines of each stream (instead of bytes). */
  lines?: number;
}

function cut(data: Buffer, query: LogQuery, cutAtStart = false): Buffer {
  if (query.lines !== undefined) return lastLines(data, query.lines, cutAtStart);
  if (query.tailBytes > 0 && data.length > query.tailBytes) return data.subarray(data.length - query.tailBytes);
  return data;
}

function streamsOf(stream: Stream): Array<'stdout' | 'stderr'> {
  // As the original: stdout's tail, then stderr's.
  return stream === 'both' ? ['stdout', 'stderr'] : [stream];
}

export async function commandLogs(core: CoreParts, control: CommandControl, wsId: string, name: string, query: LogQuery): Promise<Buffer> {
  const ws = workspaceEntry(core, wsId);
  const run = typeof name === 'string' ? core.table.get(name) : undefined;
  if (run && run.wsId === ws.id) {
    // A run restored after a restart has no ring (restore-history.ts): a pipeline node's is in its files.
    if (run.pipelineId !== undefined && run.stdout.capacity === 0 && core.logFiles) return nodeFromFiles(core, core.logFiles, run, query);
    return Buffer.concat(streamsOf(query.stream).map((s) => cut(run[s].tail(0), query, run[s].total > run[s].keptBytes)));
  }
  let command;
  try {
    command = control.resolve(ws, name);
  } catch (error) {
    if ((error as ShumaError).code === 'AMBIGUOUS_NAME') throw error;
    throw new ShumaError('COMMAND_NOT_FOUND', `workspace ${ws.id} (${ws.label}) has no command ${JSON.stringify(name)}: commands() lists its commands`);
  }
  const runs = core.table.ofWorkspace(ws.id).filter((r) => r.key === command.key && r.pipelineId === undefined);
  const parts: Buffer[] = [];
  for (const stream of streamsOf(query.stream)) {
    const want = query.lines !== undefined ? { lines: query.lines } : { bytes: query.tailBytes > 0 ? query.tailBytes : core.logBufferBytes };
    const fromFile = core.logFiles ? await core.logFiles.tail({ wsId: ws.id, key: command.key, label: command.label }, stream, want) : null;
    parts.push(fromFile ?? cut(fromRings(runs, stream), query, runs.length > 0 && runs[0]![stream].total > runs[0]![stream].keptBytes));
  }
  return Buffer.concat(parts);
}

function fromRings(runs: readonly RunEntry[], stream: 'stdout' | 'stderr'): Buffer {
  return Buffer.concat(runs.map((run) => run[stream].tail(0)));
}

/** A pipeline node's files hold every attempt of it: the tail asked for, as for a command. */
async function nodeFromFiles(core: CoreParts, files: NonNullable<CoreParts['logFiles']>, run: RunEntry, query: LogQuery): Promise<Buffer> {
  const owner = { wsId: run.wsId, key: run.pipelineId!, label: run.label };
  const want = query.lines !== undefined ? { lines: query.lines } : { bytes: query.tailBytes > 0 ? query.tailBytes : core.logBufferBytes };
  const parts = await Promise.all(streamsOf(query.stream).map((stream) => files.tail(owner, stream, want)));
  return Buffer.concat(parts.map((part) => part ?? Buffer.alloc(0)));
}
