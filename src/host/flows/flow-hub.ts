import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { ShumaError } from '../../protocol/errors.js';
import { tooLong, userFlowDir } from './flow-dir.js';
import { closeEnds, openPipes, type KernelPipe } from '../spawn/kernel-pipes.js';
import { FlowMeter } from './flow-meter.js';
import { jsPumpFactory, type EdgePump, type PumpFactory } from './flow-pump.js';
import { release, releaseAll, spliceAttempt, type SplicedFlows } from './flow-splice.js';
import { FlowChannel, MAX_SOCKET_PATH_BYTES } from './flow-socket.js';
import { startPumps } from './start-pumps.js';
import type { PipelineEntry, WorkspaceEntry } from '../registry/registry.js';
import type { SpawnOrder } from '../spawn/spawner.js';

/** What `pipeline.flows()` reports of one edge. */
export interface FlowInfo {
  /** 'from->to', by node label. */
  edge: string;
  /** Which output of `from` the edge carries. */
  stream: 'stdout' | 'stderr';
  /** The unix socket where readers attach to a live copy of the edge's bytes; absent once it ended. */
  socketPath?: string;
  /** Bytes passed into the reading node's stdin since the pipeline started (all attempts). */
  bytes: number;
  /** Over the last 5 s (or the flow's life, while shorter); 0 once the pipeline ended. */
  bytesPerSec: number;
  /** Readers attached to the socket now. */
  readers: number;
}

/** The stdio of one node of a tapped pipeline: its ends of kernel pipes to the runtime. */
export type TapStdio = NonNullable<SpawnOrder['stdio']>;

/** One attempt of a tapped pipeline, between opening its pipes and running its pumps. */
export interface TapAttempt {
  stdioOf(label: string): TapStdio;
  /** The children hold their ends (or failed to start): the runtime closes its copies. */
  closeChildEnds(): void;
  /** The spawn failed: close the runtime's ends too, and the pipeline's flow channels. */
  abort(): void;
  /** Every node runs: pump each edge through the runtime. */
  start(): void;
}

/** What the host actor asks of the tapped data plane. */
export interface TapPlane {
  /**
   * Opens the pipeline's flow channels (once, on its first attempt: they live as long as the
   * pipeline, across restarts) and this attempt's kernel pipes. Rejects with INVALID_SPEC
   * (field flowDir) when a socket path would not fit, before anything starts.
   */
  prepare(ws: WorkspaceEntry, pipeline: PipelineEntry, only?: ReadonlySet<string>): Promise<TapAttempt>;
  /** rest_for_one: a node that ended for good lets go of its stdin (flow-splice.ts). */
  release(pipeline: PipelineEntry, label: string): void;
}

interface PipelineFlows {
  /** By edge index. */
  readonly channels: FlowChannel[];
  pumps: EdgePump[];
  readonly inPrivateDir: boolean;
  closed: boolean;
  /** rest_for_one: the held stdin ends and each pump's node (flow-splice.ts). */
  splice?: SplicedFlows['splice'];
}

/**
 * The data plane of tapped pipelines. Between every node and the runtime runs a kernel pipe
 * (a FIFO, see kernel-pipes.ts): a node writes its output into one and reads its stdin from
 * another, so it sees real pipe semantics (blocking when full, SIGPIPE when its reader is
 * gone). The runtime pumps each output to its readers (copying for a fan-out), meters every
 * edge, and publishes it on a unix socket, its flow channel. Untapped pipelines never come
 * here: their bytes stay in the kernel.
 */
export class FlowHub implements TapPlane {
  private readonly byPipeline = new Map<string, PipelineFlows>();
  /** The last figures of a pipeline whose flows closed: what crossed, readable after the end. */
  private readonly finalFigures = new WeakMap<PipelineEntry, FlowInfo[]>();
  /** The runtime's own 0700 directory for workspaces without a flowDir, while in use. */
  private privateDir: string | null = null;
  private privateDirUsers = 0;
  private exitHookOn = false;
  private readonly removeFilesNow = () => {
    for (const flows of this.byPipeline.values()) for (const channel of flows.channels) channel.removeFileNow();
    if (this.privateDir) rmSync(this.privateDir, { recursive: true, force: true });
  };

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number,
    /** The native pump (bytes never in JavaScript) with the native spawner; the JS one otherwise. */
    private readonly newPump: PumpFactory = jsPumpFactory,
  ) {}

  /** Live flow channels, over every pipeline. */
  get activeCount(): number {
    let count = 0;
    for (const flows of this.byPipeline.values()) count += flows.channels.length;
    return count;
  }

  async prepare(ws: WorkspaceEntry, pipeline: PipelineEntry, only?: ReadonlySet<string>): Promise<TapAttempt> {
    const flows = await this.channelsOf(ws, pipeline);
    // rest_for_one: the runtime holds every stdin, and `only` restarts part of the pipeline.
    if (pipeline.splices) {
      const labels = only ?? new Set(pipeline.spec.nodes.map((node) => node.label));
      const onAbort = only ? () => undefined : () => this.drop(pipeline);
      return spliceAttempt(flows, pipeline.spec.edges, labels, { logger: this.logger, newPump: this.newPump, onAbort });
    }
    // A new attempt: whatever the last one left (a pipe a stray process still held) goes.
    for (const pump of flows.pumps) pump.destroy();
    flows.pumps = [];

    const { edges } = pipeline.spec;
    const outputKey = (label: string, stream: 'stdout' | 'stderr') => `${stream}:${label}`;
    const outputs = new Map<string, number[]>();
    edges.forEach((edge, i) => {
      const key = outputKey(edge.from, edge.stream ?? 'stdout');
      outputs.set(key, [...(outputs.get(key) ?? []), i]);
    });
    let pipes: KernelPipe[];
    try {
      pipes = await openPipes(outputs.size + edges.length);
    } catch (error) {
      this.drop(pipeline);
      throw error;
    }
    // Pipe i < edges.length is the stdin of edge i's reader (one writer per stdin); the rest
    // are the outputs that feed edges.
    const stdinOf = new Map(edges.map((edge, i) => [edge.to, pipes[i]!]));
    const outputOf = new Map([...outputs.keys()].map((key, i) => [key, pipes[edges.length + i]!]));
    const childEnds = [...[...stdinOf.values()].map((p) => p.readFd), ...[...outputOf.values()].map((p) => p.writeFd)];
    const runtimeEnds = [...[...stdinOf.values()].map((p) => p.writeFd), ...[...outputOf.values()].map((p) => p.readFd)];
    let childEndsOpen = true;
    let runtimeEndsOpen = true;
    const closeChildEnds = () => {
      if (childEndsOpen) closeEnds(childEnds);
      childEndsOpen = false;
    };

    return {
      stdioOf: (label) => {
        const stdio: TapStdio = {};
        const stdin = stdinOf.get(label);
        const stdout = outputOf.get(outputKey(label, 'stdout'));
        const stderr = outputOf.get(outputKey(label, 'stderr'));
        // A node with no writer reads /dev/null, as in an untapped pipeline.
        if (stdin) stdio.stdin = stdin.readFd;
        if (stdout) stdio.stdout = stdout.writeFd;
        if (stderr) stdio.stderr = stderr.writeFd;
        return stdio;
      },
      closeChildEnds,
      abort: () => {
        closeChildEnds();
        if (runtimeEndsOpen) closeEnds(runtimeEnds);
        runtimeEndsOpen = false;
        this.drop(pipeline);
      },
      start: () => {
        if (!runtimeEndsOpen) return;
        runtimeEndsOpen = false;
        if (flows.closed) {
          // The pipeline was dropped while its nodes started: its processes are being stopped.
          closeEnds(runtimeEnds);
          return;
        }
        startPumps(flows, { edges, outputs, outputOf, stdinOf }, { newPump: this.newPump, logger: this.logger.child({ pipeline: pipeline.id }) });
      },
    };
  }

  /** Live figures while the pipeline runs; its final byte counts (no socket) after it ended. */
  list(pipeline: PipelineEntry): FlowInfo[] {
    const flows = this.byPipeline.get(pipeline.id);
    if (!flows) return (this.finalFigures.get(pipeline) ?? []).map((info) => ({ ...info }));
    for (const pump of flows.pumps) pump.sync();
    return flows.channels.map((channel) => ({
      edge: channel.edge,
      stream: channel.stream,
      socketPath: channel.socketPath,
      bytes: channel.meter.bytes,
      bytesPerSec: channel.meter.perSecond(),
      readers: channel.readerCount,
    }));
  }

  release(pipeline: PipelineEntry, label: string): void {
    const flows = this.byPipeline.get(pipeline.id);
    if (flows) release(flows, label);
  }

  /** The pipeline ended, was stopped, or its workspace stopped: close its flows, remove their sockets. */
  drop(pipeline: PipelineEntry): void {
    const flows = this.byPipeline.get(pipeline.id);
    if (!flows) return;
    this.finalFigures.set(
      pipeline,
      this.list(pipeline).map(({ socketPath: _gone, ...info }) => ({ ...info, bytesPerSec: 0, readers: 0 })),
    );
    this.byPipeline.delete(pipeline.id);
    flows.closed = true;
    releaseAll(flows);
    for (const pump of flows.pumps) pump.destroy();
    for (const channel of flows.channels) channel.close();
    if (flows.inPrivateDir) this.releasePrivateDir();
    this.updateExitHook();
  }

  /** The pipeline's channels: opened on its first attempt, kept across restarts. */
  private async channelsOf(ws: WorkspaceEntry, pipeline: PipelineEntry): Promise<PipelineFlows> {
    const existing = this.byPipeline.get(pipeline.id);
    if (existing) return existing;
    const { edges } = pipeline.spec;
    if (edges.length === 0) {
      // Nothing to pump or publish (a tapped pipeline of unconnected nodes).
      const none: PipelineFlows = { channels: [], pumps: [], inPrivateDir: false, closed: false };
      this.byPipeline.set(pipeline.id, none);
      this.updateExitHook();
      return none;
    }
    const own = ws.spec.flowDir === undefined;
    // The lengths are checked before anything is made: a refused spec leaves nothing behind.
    // (mkdtemp's name has the length of its template.)
    const planned = own ? (this.privateDir ?? path.join(tmpdir(), 'shuma-flows-XXXXXX')) : path.resolve(ws.cwd, ws.spec.flowDir!);
    const longest = path.join(planned, `${pipeline.id}.${edges.length - 1}.sock`);
    if (Buffer.byteLength(longest) > MAX_SOCKET_PATH_BYTES) throw tooLong(longest, own);
    const dir = own ? this.acquirePrivateDir() : await userFlowDir(planned);
    const paths = edges.map((_, i) => path.join(dir, `${pipeline.id}.${i}.sock`));
    const flows: PipelineFlows = { channels: [], pumps: [], inPrivateDir: own, closed: false };
    this.byPipeline.set(pipeline.id, flows);
    this.updateExitHook();
    try {
      for (const [i, edge] of edges.entries()) {
        const stream = edge.stream ?? 'stdout';
        const channel = await FlowChannel.open(`${edge.from}->${edge.to}`, stream, paths[i]!, new FlowMeter(this.now), this.logger, this.newPump.openFanout ?? null);
        if (flows.closed) {
          channel.close();
          throw new ShumaError('WORKSPACE_STOPPED', `pipeline ${pipeline.label} was stopped while it started`);
        }
        flows.channels.push(channel);
      }
    } catch (error) {
      this.drop(pipeline);
      throw error;
    }
    return flows;
  }

  private acquirePrivateDir(): string {
    // mkdtemp makes it 0700: only this user may reach the sockets inside.
    this.privateDir ??= mkdtempSync(path.join(tmpdir(), 'shuma-flows-'));
    this.privateDirUsers++;
    return this.privateDir;
  }

  private releasePrivateDir(): void {
    if (--this.privateDirUsers > 0 || !this.privateDir) return;
    rmSync(this.privateDir, { recursive: true, force: true });
    this.privateDir = null;
  }

  /** Socket files must not outlive the process, even one that exits without a shutdown. */
  private updateExitHook(): void {
    const wanted = this.byPipeline.size > 0;
    if (wanted === this.exitHookOn) return;
    this.exitHookOn = wanted;
    if (wanted) process.on('exit', this.removeFilesNow);
    else process.off('exit', this.removeFilesNow);
  }
}
