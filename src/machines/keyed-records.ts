// Records keyed by command id (a workspace's labels, dependencies, groups by member): each run
// brings a key never seen before. A plain object given a new key gets a new V8 layout (a hidden
// class, its descriptors and a transition from the empty object's): ~6 us a key, measured, and
// a share of every `ws.run`. These records are made in dictionary mode from the start (no
// prototype: XState, msgpack and the snapshot file see the same fields): ~0.3 us a key.

/** A new record holding `record`'s fields and `key` set to `value` (last, if new). */
export function withKey<T>(record: Readonly<Record<string, T>> | undefined, key: string, value: T): Record<string, T> {
  const next = Object.create(null) as Record<string, T>;
  if (record) for (const k in record) next[k] = record[k]!;
  next[key] = value;
  return next;
}

/** A new record holding only the fields of `record` named in `keys`, in the order of `keys`. */
export function onlyKeys<T>(record: Readonly<Record<string, T>>, keys: readonly string[]): Record<string, T> {
  const next = Object.create(null) as Record<string, T>;
  for (const key of keys) if (record[key] !== undefined) next[key] = record[key]!;
  return next;
}
