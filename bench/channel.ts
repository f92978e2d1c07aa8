// (c) Host ↔ worker messages: shuma's BatchedChannel (msgpack, one transferred buffer per
// turn) against one plain postMessage per message, with the same ~200-byte object; and a
// comlink call against a plain postMessage round trip.
import { wrap, releaseProxy, type Remote } from 'comlink';
import { MessageChannel, Worker } from 'node:worker_threads';
import { BatchedChannel } from '../src/protocol/channel.js';
import { encode } from '../src/protocol/codec.js';
import { comlinkEndpoint } from '../src/protocol/comlink-endpoint.js';
import type { Control, CountReply, EchoApi, EchoWorkerData, Transport } from './echo-worker.js';
import { best, nextMacrotask, now, progress, type Line, type Rate } from './measure.js';

/** A message as the host sends them by the thousand: a command event for a worker. */
const MESSAGE = {
  type: 'commandEvent',
  wsId: '01JC0ZB4NQ8F3X8YV6W1T5K2RM',
  key: '01JC0ZB4NR2D6H0M9S3A7QEXJV',
  event: {
    type: 'EXITED',
    at: 1_730_000_000_000,
    runId: '01JC0ZB4NS5GZQ1B8C4V2N9T6W',
    code: 1,
    signal: null,
    status: 1,
    label: 'bench-echo-worker-command',
  },
};

const BURST = 100;

/** One end of a host ↔ worker channel, as the benchmark drives it. */
interface Link {
  send(message: unknown): void;
  /** Replaces the handler of what the worker sends back. */
  onReceive(handler: (message: unknown) => void): void;
  close(): Promise<void>;
}

function startWorker(data: EchoWorkerData): Worker {
  return new Worker(new URL('./echo-worker.js', import.meta.url), { workerData: data, transferList: [data.port] });
}

function openLink(transport: Exclude<Transport, 'comlink'>): Link {
  const { port1, port2 } = new MessageChannel();
  const worker = startWorker({ transport, port: port2 });
  let handler: (message: unknown) => void = () => undefined;
  const receive = (message: unknown) => handler(message);
  let send: (message: unknown) => void;
  let closeChannel: () => void;
  if (transport === 'batched') {
    const channel = new BatchedChannel<unknown, unknown>(port1, receive);
    send = (message) => channel.send(message);
    closeChannel = () => channel.close();
  } else {
    port1.on('message', receive);
    send = (message) => port1.postMessage(message);
    closeChannel = () => port1.off('message', receive);
  }
  return {
    send,
    onReceive: (next) => (handler = next),
    close: async () => {
      closeChannel();
      port1.close();
      await worker.terminate();
    },
  };
}

function isCountReply(message: unknown): message is CountReply {
  return (message as { type?: unknown } | null)?.type === 'bench.count';
}

function control(link: Link, message: Control): void {
  link.send(message);
}

/** How many payload messages the worker got since the last ask; also a barrier behind them. */
function receivedCount(link: Link): Promise<number> {
  return new Promise((resolve) => {
    link.onReceive((message) => {
      if (isCountReply(message)) resolve(message.received);
    });
    control(link, { type: 'bench.count' });
  });
}

/** Sends `count` messages, `burst` per turn of the event loop, as a busy host would. */
async function sendInBursts(link: Link, count: number, burst: number): Promise<void> {
  for (let sent = 0; sent < count; ) {
    for (let i = 0; i < burst && sent < count; i++, sent++) link.send(MESSAGE);
    await nextMacrotask();
  }
}

function rate(count: number, start: number): Rate {
  const ms = now() - start;
  return { ops: count, ms, perSecond: (count * 1000) / ms };
}

/** Host → worker only: until the worker has counted every message. */
async function oneWay(link: Link, count: number, burst: number): Promise<Rate> {
  control(link, { type: 'bench.echo', echo: false });
  await receivedCount(link);
  const start = now();
  await sendInBursts(link, count, burst);
  const received = await receivedCount(link);
  if (received !== count) throw new Error(`the worker received ${received} of ${count} messages`);
  return rate(count, start);
}

/** Host → worker → host, with no limit on what is in flight: both directions at full load. */
async function echoed(link: Link, count: number, burst: number): Promise<Rate> {
  control(link, { type: 'bench.echo', echo: true });
  await receivedCount(link);
  const start = now();
  let back = 0;
  const allBack = new Promise<void>((resolve) =>
    link.onReceive((message) => {
      if (!isCountReply(message) && ++back === count) resolve();
    }),
  );
  await sendInBursts(link, count, burst);
  await allBack;
  return rate(count, start);
}

/** One message in flight at a time: the latency of a round trip, in µs. */
async function pingPong(link: Link, count: number): Promise<number> {
  control(link, { type: 'bench.echo', echo: true });
  await receivedCount(link);
  const start = now();
  for (let i = 0; i < count; i++) {
    await new Promise<unknown>((resolve) => {
      link.onReceive(resolve);
      link.send(MESSAGE);
    });
  }
  return ((now() - start) * 1000) / count;
}

interface LinkFigures {
  oneWayBurst: Rate;
  echoBurst: Rate;
  oneWaySingle: Rate;
  roundTripUs: number;
}

async function measureRound(link: Link, scale: number): Promise<LinkFigures> {
  return {
    oneWayBurst: await oneWay(link, 200_000 * scale, BURST),
    echoBurst: await echoed(link, 100_000 * scale, BURST),
    oneWaySingle: await oneWay(link, 20_000 * scale, 1),
    roundTripUs: await pingPong(link, 5_000 * scale),
  };
}

function bestOf(runs: readonly LinkFigures[]): LinkFigures {
  return {
    oneWayBurst: best(runs.map((r) => r.oneWayBurst)),
    echoBurst: best(runs.map((r) => r.echoBurst)),
    oneWaySingle: best(runs.map((r) => r.oneWaySingle)),
    roundTripUs: Math.min(...runs.map((r) => r.roundTripUs)),
  };
}

/**
 * Both transports, round after round in turn, so that a change in the load of the machine
 * (other work shares the two cores) hits both alike; the best round of each counts.
 */
async function measureTransports(rounds: number): Promise<{ batched: LinkFigures; plain: LinkFigures }> {
  const batchedLink = openLink('batched');
  const plainLink = openLink('plain');
  try {
    // Warm-up: JIT on both sides of both links.
    await measureRound(batchedLink, 0.1);
    await measureRound(plainLink, 0.1);
    const batched: LinkFigures[] = [];
    const plain: LinkFigures[] = [];
    for (let round = 0; round < rounds; round++) {
      batched.push(await measureRound(batchedLink, 1));
      plain.push(await measureRound(plainLink, 1));
    }
    return { batched: bestOf(batched), plain: bestOf(plain) };
  } finally {
    await Promise.all([batchedLink.close(), plainLink.close()]);
  }
}

interface ComlinkFigures {
  callUs: number;
  concurrent: Rate;
}

async function measureComlink(): Promise<ComlinkFigures> {
  const { port1, port2 } = new MessageChannel();
  const worker = startWorker({ transport: 'comlink', port: port2 });
  const api: Remote<EchoApi> = wrap<EchoApi>(comlinkEndpoint(port1));
  try {
    const sequential = async (count: number) => {
      const start = now();
      for (let i = 0; i < count; i++) await api.echo(MESSAGE);
      return ((now() - start) * 1000) / count;
    };
    const concurrent = async (count: number) => {
      const start = now();
      for (let done = 0; done < count; done += BURST) {
        await Promise.all(Array.from({ length: BURST }, () => api.echo(MESSAGE)));
      }
      return rate(count, start);
    };
    await sequential(500);
    await concurrent(2_000);
    const calls = [await sequential(5_000), await sequential(5_000)];
    const bursts = [await concurrent(20_000), await concurrent(20_000)];
    return { callUs: Math.min(...calls), concurrent: best(bursts) };
  } finally {
    api[releaseProxy]();
    port1.close();
    await worker.terminate();
  }
}

export async function channelSection(): Promise<Line[]> {
  const bytes = encode(MESSAGE).length;
  progress(`messages: BatchedChannel vs postMessage (${bytes}-byte msgpack message)`);
  const { batched, plain } = await measureTransports(3);
  progress('messages: comlink');
  const comlink = await measureComlink();
  return [
    { heading: `(c) host ↔ worker messages (${bytes} B as msgpack): BatchedChannel  vs  one postMessage per message` },
    { what: `host → worker, ${BURST} sent per turn`, unit: 'msgs/s', shuma: batched.oneWayBurst.perSecond, baseline: plain.oneWayBurst.perSecond },
    { what: `host → worker → host (echo), ${BURST} per turn`, unit: 'round trips/s', shuma: batched.echoBurst.perSecond, baseline: plain.echoBurst.perSecond },
    { what: 'host → worker, 1 sent per turn', unit: 'msgs/s', shuma: batched.oneWaySingle.perSecond, baseline: plain.oneWaySingle.perSecond },
    { what: 'round trip, 1 in flight', unit: 'µs', shuma: batched.roundTripUs, baseline: plain.roundTripUs },
    { heading: '    comlink (admin calls)  vs  plain postMessage' },
    { what: 'comlink call, 1 in flight  vs  postMessage round trip', unit: 'µs', shuma: comlink.callUs, baseline: plain.roundTripUs },
    { what: `comlink calls, ${BURST} in flight  vs  postMessage echo`, unit: 'calls/s', shuma: comlink.concurrent.perSecond, baseline: plain.echoBurst.perSecond },
  ];
}
