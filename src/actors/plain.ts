import type { PlainValue } from '../protocol/actor-records.js';

const MAX_DEPTH = 8;

/**
 * Plain copies of values frozen through, by identity: such a value never changes, and many
 * snapshots hold the same one (every plain new workspace's group, machines/workspace-start.ts;
 * the empty parts of groups). Copied once per thread, not at every snapshot of every workspace.
 */
const frozenCopies = new WeakMap<object, { depth: number; plain: PlainValue }>();

/**
 * A copy that survives msgpack and means the same on the other side: functions and actor
 * refs dropped (refs become their id), errors as { name, message }, depth bounded.
 */
export function toPlain(value: unknown, depth = 0): PlainValue {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'bigint':
      return value.toString();
    case 'function':
    case 'symbol':
      return null;
  }
  if (depth >= MAX_DEPTH) return '[…]';
  if (Object.isFrozen(value)) {
    const copy = frozenCopies.get(value);
    if (copy && copy.depth === depth) return copy.plain;
    const plain = copyToPlain(value, depth);
    if (frozenThrough(value)) frozenCopies.set(value, { depth, plain });
    return plain;
  }
  return copyToPlain(value, depth);
}

/** Frozen, and so is every object in it: nothing in it can change. */
function frozenThrough(value: object): boolean {
  if (!Object.isFrozen(value)) return false;
  for (const item of Object.values(value)) if (item !== null && typeof item === 'object' && !frozenThrough(item as object)) return false;
  return true;
}

function copyToPlain(value: object, depth: number): PlainValue {
  if (Array.isArray(value)) return value.map((item) => toPlain(item, depth + 1));
  if (value instanceof Error) return { name: value.name, message: value.message };
  const record = value as Record<string, unknown>;
  if (typeof record.send === 'function' && typeof record.sessionId === 'string') {
    return { actorRef: typeof record.id === 'string' ? record.id : null };
  }
  const out: { [key: string]: PlainValue } = {};
  for (const [key, item] of Object.entries(record)) {
    if (typeof item === 'function' || item === undefined) continue;
    out[key] = toPlain(item, depth + 1);
  }
  return out;
}

/**
 * A persisted XState snapshot as plain data for msgpack and the snapshot file. Unlike
 * toPlain, nothing is cut short by depth: a restore needs all of it. XState's own persisted
 * form holds no functions or refs; undefined fields are dropped, as JSON would.
 */
export function toPersistable(value: unknown): PlainValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value !== 'object') return null;
  if (Array.isArray(value)) return value.map(toPersistable);
  if (value instanceof Error) return { name: value.name, message: value.message };
  const out: { [key: string]: PlainValue } = {};
  for (const [key, item] of Object.entries(value)) {
    if (item === undefined || typeof item === 'function') continue;
    out[key] = toPersistable(item);
  }
  return out;
}
