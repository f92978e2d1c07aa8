import type { PlainValue } from './actor-records.js';
import type { PersistedMessage } from './worker-messages.js';

type Children = Record<string, PlainValue>;

/**
 * The workspace's whole persisted snapshot from the last one and a `persisted` message: the
 * entries it carries replace or add, the keys it lists say which children exist and in what
 * order (XState restores them in that order). Without a list, the message is whole. With
 * `mirroredContext`, its context is `observedContext`, the one of the workspace's last snapshot.
 */
export function mergePersisted(previous: PlainValue | null, message: PersistedMessage, observedContext?: PlainValue): PlainValue {
  const next = message.snapshot as { [key: string]: PlainValue };
  const context: { [key: string]: PlainValue } = message.mirroredContext ? { context: mirrored(observedContext) } : {};
  if (!message.children) return { ...next, ...context };
  const fresh = (next.children ?? {}) as Children;
  const old = ((previous as { children?: Children } | null)?.children ?? {}) as Children;
  const children: Children = {};
  for (const key of message.children) {
    const entry = fresh[key] ?? old[key];
    if (entry !== undefined) children[key] = entry;
  }
  return { ...next, ...context, children };
}

function mirrored(observedContext: PlainValue | undefined): PlainValue {
  // The worker leaves the context out only after sending it in a snapshot message: never without one.
  if (observedContext === undefined) throw new Error('a persisted snapshot refers to the context of a workspace snapshot the main thread never had');
  return observedContext;
}
