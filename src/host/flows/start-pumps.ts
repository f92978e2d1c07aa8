import type { Logger } from 'pino';
import { serializeError } from '../../protocol/errors.js';
import type { PipelineEdge } from '../../protocol/pipeline-spec.js';
import type { KernelPipe } from '../spawn/kernel-pipes.js';
import type { EdgePump, PumpFactory } from './flow-pump.js';
import type { FlowChannel } from './flow-socket.js';

/** Which pipe ends a set of tapped edges uses: one output pipe per node stream, one stdin pipe per reader. */
export interface PumpWiring {
  /** The pipeline's edges, indexed as `flows.channels` is. */
  readonly edges: readonly PipelineEdge[];
  /** Output key (`stream:label`) → the indexes of the edges it feeds. */
  readonly outputs: ReadonlyMap<string, number[]>;
  readonly outputOf: ReadonlyMap<string, KernelPipe>;
  readonly stdinOf: ReadonlyMap<string, KernelPipe>;
}

/**
 * One pump per output, into the stdin of every node it feeds, metered on each edge's channel.
 * A pump that cannot start is logged, never thrown: the descriptors are fresh pipe ends, so it
 * is not expected, and an uncaught error would take the host down with it.
 */
export function startPumps(
  flows: { readonly channels: FlowChannel[]; pumps: EdgePump[] },
  wiring: PumpWiring,
  { newPump, logger, onStarted }: { newPump: PumpFactory; logger: Logger; onStarted?: (pump: EdgePump, from: string) => void },
): void {
  const { edges, outputs, outputOf, stdinOf } = wiring;
  for (const [key, indexes] of outputs) {
    const sinks = indexes.map((i) => ({ fd: stdinOf.get(edges[i]!.to)!.writeFd, channel: flows.channels[i]! }));
    try {
      const pump = newPump(outputOf.get(key)!.readFd, sinks, logger);
      flows.pumps.push(pump);
      onStarted?.(pump, edges[indexes[0]!]!.from);
    } catch (error) {
      logger.error({ output: key, err: serializeError(error) }, 'could not pump a tapped output');
    }
  }
}
