import type { Endpoint } from 'comlink';
import type { MessagePort } from 'node:worker_threads';

// comlink speaks the DOM's addEventListener/postMessage; Node's MessagePort speaks on/off with
// the data itself. This is comlink's own node-adapter, typed, because the package has no
// exports map that makes its adapter importable under NodeNext.
type Listener = (event: { data: unknown }) => void;
type ListenerLike = Listener | { handleEvent: Listener };

export function comlinkEndpoint(port: MessagePort): Endpoint {
  const wrapped = new WeakMap<ListenerLike, (data: unknown) => void>();
  return {
    postMessage: (message: unknown, transfer?: unknown[]) => {
      port.postMessage(message, transfer as Parameters<MessagePort['postMessage']>[1]);
    },
    addEventListener: (_type: string, listener: ListenerLike) => {
      const onMessage = (data: unknown) => {
        if ('handleEvent' in listener) listener.handleEvent({ data });
        else listener({ data });
      };
      port.on('message', onMessage);
      wrapped.set(listener, onMessage);
    },
    removeEventListener: (_type: string, listener: ListenerLike) => {
      const onMessage = wrapped.get(listener);
      if (!onMessage) return;
      port.off('message', onMessage);
      wrapped.delete(listener);
    },
    start: () => port.start(),
  } as unknown as Endpoint;
}
