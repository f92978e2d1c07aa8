import type { Logger } from 'pino';
import type { Readable, Writable } from 'node:stream';
import type { RunEntry } from './process-table.js';
import type { PipelineEntry } from './registry.js';
import type { SpawnedProcess } from './spawner.js';

/** What `pipeline.flows()` reports of one edge. */
export interface FlowInfo {
  edge: string;
  socketPath?: string;
  bytes: number;
  bytesPerSec: number;
}

/** Bytes per second over a sliding window of one-second buckets. */
class Meter {
  private static readonly WINDOW_S = 5;
  private readonly buckets = new Array<number>(Meter.WINDOW_S).fill(0);
  private bucketSecond = 0;
  bytes = 0;

  constructor(private readonly now: () => number) {
    this.bucketSecond = Math.floor(now() / 1000);
  }

  add(count: number): void {
    this.roll();
    this.bytes += count;
    this.buckets[this.bucketSecond % Meter.WINDOW_S]! += count;
  }

  perSecond(): number {
    this.roll();
    // The current second is partial: average over the full seconds before it and itself.
    return this.buckets.reduce((a, b) => a + b, 0) / Meter.WINDOW_S;
  }

  private roll(): void {
    const second = Math.floor(this.now() / 1000);
    for (let s = Math.max(this.bucketSecond + 1, second - Meter.WINDOW_S + 1); s <= second; s++) {
      this.buckets[s % Meter.WINDOW_S] = 0;
    }
    this.bucketSecond = Math.max(this.bucketSecond, second);
  }
}

interface Flow {
  edge: string;
  meter: Meter;
  socketPath: string | undefined;
  close(): void;
}

/**
 * The data plane of tapped pipelines: every edge's bytes pass through here, are metered and
 * copied to the edge's readers. Untapped pipelines never come here: their bytes stay in the
 * kernel.
 */
export class FlowHub {
  private readonly flowsByPipeline = new Map<string, Flow[]>();

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  get activeCount(): number {
    let count = 0;
    for (const flows of this.flowsByPipeline.values()) count += flows.length;
    return count;
  }

  wire(pipeline: PipelineEntry, runs: RunEntry[], spawned: SpawnedProcess[]): void {
    this.drop(pipeline);
    const index = new Map(runs.map((run, i) => [run.label, i]));
    const flows: Flow[] = [];
    const readersOf = new Map<Readable, Writable[]>();
    for (const edge of pipeline.spec.edges) {
      const from = spawned[index.get(edge.from)!]!;
      const to = spawned[index.get(edge.to)!]!;
      const source = edge.stream === 'stderr' ? from.stderr : from.stdout;
      if (!source || !to.stdin) continue;
      const meter = new Meter(this.now);
      const flow: Flow = { edge: `${edge.from}->${edge.to}`, meter, socketPath: undefined, close: () => undefined };
      flows.push(flow);
      const sinks = readersOf.get(source) ?? [];
      sinks.push(to.stdin);
      readersOf.set(source, sinks);
      source.on('data', (chunk: Buffer) => meter.add(chunk.length));
    }
    for (const [source, sinks] of readersOf) pump(source, sinks, this.logger);
    // Outputs that feed no edge are captured like any command's.
    runs.forEach((run, i) => {
      const child = spawned[i]!;
      const fed = (stream: 'stdout' | 'stderr') =>
        pipeline.spec.edges.some((e) => e.from === run.label && (e.stream ?? 'stdout') === stream);
      if (!fed('stdout')) child.stdout?.on('data', (chunk: Buffer) => run.stdout.write(chunk));
      if (!fed('stderr')) child.stderr?.on('data', (chunk: Buffer) => run.stderr.write(chunk));
      // A node with no writer keeps an empty, closed stdin, as </dev/null would give it.
      const hasWriter = pipeline.spec.edges.some((e) => e.to === run.label);
      if (!hasWriter) child.stdin?.end();
    });
    this.flowsByPipeline.set(pipeline.id, flows);
  }

  list(pipeline: PipelineEntry): FlowInfo[] {
    return (this.flowsByPipeline.get(pipeline.id) ?? []).map((flow) => ({
      edge: flow.edge,
      ...(flow.socketPath ? { socketPath: flow.socketPath } : {}),
      bytes: flow.meter.bytes,
      bytesPerSec: flow.meter.perSecond(),
    }));
  }

  drop(pipeline: PipelineEntry): void {
    for (const flow of this.flowsByPipeline.get(pipeline.id) ?? []) flow.close();
    this.flowsByPipeline.delete(pipeline.id);
  }
}

/**
 * Copies a source to every sink with backpressure: the source pauses while a sink is full.
 * When a sink's reader is gone, the source is destroyed once no sink is left, so the writer
 * gets SIGPIPE as it would writing into a closed pipe.
 */
function pump(source: Readable, sinks: Writable[], logger: Logger): void {
  const live = new Set(sinks);
  let waiting = 0;
  for (const sink of sinks) {
    sink.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') logger.warn({ err: error.message }, 'flow sink error');
      live.delete(sink);
      if (live.size === 0) source.destroy();
    });
    sink.on('drain', () => {
      if (--waiting === 0) source.resume();
    });
  }
  source.on('data', (chunk: Buffer) => {
    for (const sink of live) {
      if (!sink.write(chunk)) {
        waiting++;
        source.pause();
      }
    }
  });
  source.on('end', () => {
    for (const sink of live) sink.end();
  });
}
