import type { PlainValue } from '../protocol/actor-records.js';

const MAX_DEPTH = 8;

// What these copies feed is encoded at the end of the same turn (protocol/channel.ts), and an
// actor's context is never changed in place (XState replaces it, and every part that changes):
// a part that is plain data already is used as it is, and only what must change (a function or
// an undefined field dropped, a ref, an error, a number that is not finite, a cut at MAX_DEPTH)
// is copied, with the path above it. The copy of every part at every snapshot was ~8% of an
// actor thread's time per `ws.run`, and most of what it collected.

/**
 * Plain copies of values frozen through, by identity: such a value never changes, and many
 * snapshots hold the same one (every plain new workspace's group, machines/workspace-start.ts;
 * the empty parts of groups). Copied once per thread, not at every snapshot of every workspace.
 */
const frozenCopies = new WeakMap<object, { depth: number; plain: PlainValue }>();

/**
 * A value that survives msgpack and means the same on the other side: functions and actor
 * refs dropped (refs become their id), errors as { name, message }, depth bounded. The value
 * itself where it is all of that already.
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
    const plain = plainOf(value, depth);
    if (plain !== value && frozenThrough(value)) frozenCopies.set(value, { depth, plain });
    return plain;
  }
  return plainOf(value, depth);
}

/** Frozen, and so is every object in it: nothing in it can change. */
function frozenThrough(value: object): boolean {
  if (!Object.isFrozen(value)) return false;
  for (const item of Object.values(value)) if (item !== null && typeof item === 'object' && !frozenThrough(item as object)) return false;
  return true;
}

function plainOf(value: object, depth: number): PlainValue {
  if (Array.isArray(value)) return sharedArray(value, (item) => toPlain(item, depth + 1));
  if (value instanceof Error) return { name: value.name, message: value.message };
  const record = value as Record<string, unknown>;
  if (typeof record.send === 'function' && typeof record.sessionId === 'string') {
    return { actorRef: typeof record.id === 'string' ? record.id : null };
  }
  return sharedRecord(record, (item) => toPlain(item, depth + 1));
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
  if (Array.isArray(value)) return sharedArray(value, toPersistable);
  if (value instanceof Error) return { name: value.name, message: value.message };
  return sharedRecord(value as Record<string, unknown>, toPersistable);
}

/** `array` with `convert` applied to each item: the array itself when no item changes. */
function sharedArray(array: readonly unknown[], convert: (item: unknown) => PlainValue): PlainValue {
  for (let i = 0; i < array.length; i++) {
    // A hole stays a hole, as Array.prototype.map leaves it.
    if (!(i in array)) continue;
    const item = array[i];
    const plain = convert(item);
    if (plain === item) continue;
    const copy = array.slice(0, i) as PlainValue[];
    copy[i] = plain;
    for (let j = i + 1; j < array.length; j++) if (j in array) copy[j] = convert(array[j]);
    copy.length = array.length;
    return copy;
  }
  return array as PlainValue[];
}

/**
 * A record's own fields with `convert` applied, functions and undefined dropped: the record
 * itself when nothing changes and it is a plain object (anything else is copied field by field).
 */
function sharedRecord(record: Record<string, unknown>, convert: (item: unknown) => PlainValue): PlainValue {
  // A record without a prototype is plain too (keyed by id: machines/keyed-records.ts).
  const proto: unknown = Object.getPrototypeOf(record);
  if (proto !== Object.prototype && proto !== null) return copyRecord(record, convert);
  // A plain object has no inherited enumerable field: for…in meets its own, in their order.
  let kept = 0;
  for (const key in record) {
    const item = record[key];
    if (typeof item === 'function' || item === undefined) return copyRecord(record, convert, kept);
    const plain = convert(item);
    if (plain !== item) return copyRecord(record, convert, kept, plain);
    kept++;
  }
  return record as { [key: string]: PlainValue };
}

/**
 * A copy of the record's own fields; the first `kept` are plain as they are, the next one is
 * `next` when given (converted already).
 */
function copyRecord(record: Record<string, unknown>, convert: (item: unknown) => PlainValue, kept = 0, next?: PlainValue): { [key: string]: PlainValue } {
  const out: { [key: string]: PlainValue } = {};
  let index = 0;
  for (const [key, item] of Object.entries(record)) {
    const at = index++;
    if (typeof item === 'function' || item === undefined) continue;
    if (at < kept) out[key] = item as PlainValue;
    else if (at === kept && next !== undefined) out[key] = next;
    else out[key] = convert(item);
  }
  return out;
}
