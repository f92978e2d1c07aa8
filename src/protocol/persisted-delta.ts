import type { PlainValue } from './actor-records.js';
import type { PersistedMessage } from './worker-messages.js';

type Children = Record<string, PlainValue>;

/**
 * The workspace's whole persisted snapshot from the last one and a `persisted` message: the
 * entries it carries replace or add, the keys it lists say which children exist and in what
 * order (XState restores them in that order). Without a list, the message is whole.
 */
export function mergePersisted(previous: PlainValue | null, message: PersistedMessage): PlainValue {
  if (!message.children) return message.snapshot;
  const next = message.snapshot as { [key: string]: PlainValue };
  const fresh = (next.children ?? {}) as Children;
  const old = ((previous as { children?: Children } | null)?.children ?? {}) as Children;
  const children: Children = {};
  for (const key of message.children) {
    const entry = fresh[key] ?? old[key];
    if (entry !== undefined) children[key] = entry;
  }
  return { ...next, children };
}
