import type { Logger } from 'pino';
import type { PipelineEdge } from '../../protocol/pipeline-spec.js';
import { closeEnds, openPipes, type KernelPipe } from '../spawn/kernel-pipes.js';
import type { EdgePump, PumpFactory } from './flow-pump.js';
import type { FlowChannel } from './flow-socket.js';
import { startPumps } from './start-pumps.js';

// The data plane of a tapped pipeline under rest_for_one: the runtime keeps the read end of
// every node's stdin pipe (besides the node's own copy). When a node fails, its writer — the
// runtime's pump of an upstream node that runs on — finds the pipe still open: it fills (64 KiB,
// the pipe's capacity) and then blocks, and the upstream node blocks in write(2), as it would
// behind a slow reader. The new node is given that same read end as its stdin: it reads the
// bytes its predecessor had not read, then what the upstream node writes next. What the failed
// node had read but not yet written out is lost; nothing is replayed (the runtime keeps no copy
// of what was read). Its downstream nodes start afresh on new pipes. See docs/pipeline-strategies.md.
//
// A node that ended for good lets its held end go (release): its writer then sees EPIPE, and the
// upstream node SIGPIPE, as in a shell.

/** What a splice needs of a pipeline's flows (flow-hub.ts's PipelineFlows). */
export interface SplicedFlows {
  /** By edge index. */
  readonly channels: FlowChannel[];
  pumps: EdgePump[];
  closed: boolean;
  /** The held stdin read ends by node label, and which node's output each pump carries. */
  splice?: { held: Map<string, number>; sources: Map<EdgePump, string> };
}

/** One (partial) attempt: the same shape as flow-hub.ts's TapAttempt. */
export interface SpliceAttempt {
  stdioOf(label: string): { stdin?: number; stdout?: number; stderr?: number };
  closeChildEnds(): void;
  abort(): void;
  start(): void;
}

/**
 * The pipes of the nodes `labels` (all of them on a first or whole attempt; a failed node and
 * its downstream under rest_for_one). A node whose writer runs on keeps its held stdin; the
 * others get new pipes. `onAbort` runs when the spawn failed (a whole attempt drops its flows).
 */
export async function spliceAttempt(
  flows: SplicedFlows,
  edges: readonly PipelineEdge[],
  labels: ReadonlySet<string>,
  { logger, newPump, onAbort }: { logger: Logger; newPump: PumpFactory; onAbort: () => void },
): Promise<SpliceAttempt> {
  const state = (flows.splice ??= { held: new Map(), sources: new Map() });
  // The restarted nodes' own pumps (their outputs) go; the others' run on.
  for (const [pump, source] of [...state.sources]) {
    if (!labels.has(source)) continue;
    pump.destroy();
    state.sources.delete(pump);
    flows.pumps = flows.pumps.filter((p) => p !== pump);
  }
  // An edge into the set from outside it: the held end is the new node's stdin (the splice).
  const spliced = new Set(edges.filter((e) => labels.has(e.to) && !labels.has(e.from)).map((e) => e.to));
  for (const label of labels) if (!spliced.has(label)) release(flows, label);

  const inner = edges.map((edge, i) => ({ edge, i })).filter(({ edge }) => labels.has(edge.from));
  const outputKey = (label: string, stream: 'stdout' | 'stderr') => `${stream}:${label}`;
  const outputs = new Map<string, number[]>();
  for (const { edge, i } of inner) {
    const key = outputKey(edge.from, edge.stream ?? 'stdout');
    outputs.set(key, [...(outputs.get(key) ?? []), i]);
  }
  const pipes: KernelPipe[] = await openPipes(inner.length + outputs.size);
  const stdinOf = new Map(inner.map(({ edge }, k) => [edge.to, pipes[k]!]));
  const outputOf = new Map([...outputs.keys()].map((key, k) => [key, pipes[inner.length + k]!]));
  // Each new stdin's read end is held (kept from the child-end closing) for a later splice.
  const childEnds = [...outputOf.values()].map((p) => p.writeFd);
  const runtimeEnds = [...[...stdinOf.values()].map((p) => p.writeFd), ...[...outputOf.values()].map((p) => p.readFd)];
  let childEndsOpen = true;
  let runtimeEndsOpen = true;
  const closeChildEnds = () => {
    if (!childEndsOpen) return;
    childEndsOpen = false;
    closeEnds(childEnds);
    for (const [label, pipe] of stdinOf) state.held.set(label, pipe.readFd);
  };
  return {
    stdioOf: (label) => {
      const stdio: { stdin?: number; stdout?: number; stderr?: number } = {};
      const stdin = stdinOf.get(label)?.readFd ?? (spliced.has(label) ? state.held.get(label) : undefined);
      const stdout = outputOf.get(outputKey(label, 'stdout'));
      const stderr = outputOf.get(outputKey(label, 'stderr'));
      if (stdin !== undefined) stdio.stdin = stdin;
      if (stdout) stdio.stdout = stdout.writeFd;
      if (stderr) stdio.stderr = stderr.writeFd;
      return stdio;
    },
    closeChildEnds,
    abort: () => {
      if (childEndsOpen) {
        childEndsOpen = false;
        closeEnds([...childEnds, ...[...stdinOf.values()].map((p) => p.readFd)]);
      } else {
        for (const label of stdinOf.keys()) release(flows, label);
      }
      if (runtimeEndsOpen) closeEnds(runtimeEnds);
      runtimeEndsOpen = false;
      onAbort();
    },
    start: () => {
      if (!runtimeEndsOpen) return;
      runtimeEndsOpen = false;
      if (flows.closed) {
        closeEnds(runtimeEnds);
        return;
      }
      startPumps(flows, { edges, outputs, outputOf, stdinOf }, { newPump, logger, onStarted: (pump, from) => state.sources.set(pump, from) });
    },
  };
}

/** A node ended for good: its held stdin goes, its writer sees the end. */
export function release(flows: SplicedFlows, label: string): void {
  const fd = flows.splice?.held.get(label);
  if (fd === undefined) return;
  flows.splice!.held.delete(label);
  closeEnds([fd]);
}

/** The pipeline's flows close: every held end goes. */
export function releaseAll(flows: SplicedFlows): void {
  for (const label of [...(flows.splice?.held.keys() ?? [])]) release(flows, label);
  flows.splice?.sources.clear();
}
