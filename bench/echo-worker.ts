// The far end of the message benchmarks: a worker thread that counts what it receives and,
// when asked, echoes every message back, over a BatchedChannel, plain postMessage, or comlink.
import { expose } from 'comlink';
import { workerData, type MessagePort } from 'node:worker_threads';
import { BatchedChannel } from '../src/protocol/channel.js';
import { comlinkEndpoint } from '../src/protocol/comlink-endpoint.js';

export type Transport = 'batched' | 'plain' | 'comlink';

export interface EchoWorkerData {
  transport: Transport;
  port: MessagePort;
}

/** In-band control messages; every other message is payload. */
export type Control = { type: 'bench.echo'; echo: boolean } | { type: 'bench.count' };
export interface CountReply {
  type: 'bench.count';
  received: number;
}

/** What the comlink end exposes. */
export interface EchoApi {
  echo<T>(value: T): T;
}

function isControl(message: unknown): message is Control {
  const type = (message as { type?: unknown } | null)?.type;
  return type === 'bench.echo' || type === 'bench.count';
}

/** Counts payload, echoes it while echo is on, answers `bench.count` (and resets the count). */
function serve(send: (message: unknown) => void): (message: unknown) => void {
  let echo = false;
  let received = 0;
  return (message) => {
    if (!isControl(message)) {
      received++;
      if (echo) send(message);
    } else if (message.type === 'bench.echo') {
      echo = message.echo;
    } else {
      const reply: CountReply = { type: 'bench.count', received };
      received = 0;
      send(reply);
    }
  };
}

function start({ transport, port }: EchoWorkerData): void {
  switch (transport) {
    case 'comlink': {
      const api: EchoApi = { echo: (value) => value };
      expose(api, comlinkEndpoint(port));
      return;
    }
    case 'plain': {
      const receive = serve((message) => port.postMessage(message));
      port.on('message', receive);
      return;
    }
    case 'batched': {
      // The receive callback runs only after construction, when `channel` is assigned.
      const channel: BatchedChannel<unknown, unknown> = new BatchedChannel(port, (message) => receive(message));
      const receive = serve((message) => channel.send(message));
      return;
    }
  }
}

start(workerData as EchoWorkerData);
