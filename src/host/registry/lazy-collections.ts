// A Set and a Map that allocate their table at the first entry. An empty Set or Map costs
// ~150 bytes of hash table; a workspace holds several (its process groups, observers, commands,
// pipelines) and most stay empty while it is idle: 10,000 idle workspaces paid ~1.3 KiB each.

const NOTHING: ReadonlyArray<never> = Object.freeze([]);

/** A Set whose table is made at the first `add`. */
export class LazySet<T> implements Set<T> {
  private inner: Set<T> | null = null;

  get size(): number {
    return this.inner?.size ?? 0;
  }

  add(value: T): this {
    (this.inner ??= new Set()).add(value);
    return this;
  }

  has(value: T): boolean {
    return this.inner?.has(value) ?? false;
  }

  delete(value: T): boolean {
    return this.inner?.delete(value) ?? false;
  }

  clear(): void {
    this.inner = null;
  }

  forEach(callback: (value: T, again: T, set: Set<T>) => void, thisArg?: unknown): void {
    this.inner?.forEach((value) => callback.call(thisArg, value, value, this));
  }

  values(): IterableIterator<T> {
    return this.inner?.values() ?? NOTHING.values();
  }

  keys(): IterableIterator<T> {
    return this.values();
  }

  entries(): IterableIterator<[T, T]> {
    return this.inner?.entries() ?? (NOTHING as ReadonlyArray<[T, T]>).values();
  }

  [Symbol.iterator](): IterableIterator<T> {
    return this.values();
  }

  get [Symbol.toStringTag](): string {
    return 'LazySet';
  }
}

/** A Map whose table is made at the first `set`. */
export class LazyMap<K, V> implements Map<K, V> {
  private inner: Map<K, V> | null = null;

  get size(): number {
    return this.inner?.size ?? 0;
  }

  get(key: K): V | undefined {
    return this.inner?.get(key);
  }

  set(key: K, value: V): this {
    (this.inner ??= new Map()).set(key, value);
    return this;
  }

  has(key: K): boolean {
    return this.inner?.has(key) ?? false;
  }

  delete(key: K): boolean {
    return this.inner?.delete(key) ?? false;
  }

  clear(): void {
    this.inner = null;
  }

  forEach(callback: (value: V, key: K, map: Map<K, V>) => void, thisArg?: unknown): void {
    this.inner?.forEach((value, key) => callback.call(thisArg, value, key, this));
  }

  values(): IterableIterator<V> {
    return this.inner?.values() ?? NOTHING.values();
  }

  keys(): IterableIterator<K> {
    return this.inner?.keys() ?? NOTHING.values();
  }

  entries(): IterableIterator<[K, V]> {
    return this.inner?.entries() ?? NOTHING.values();
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return 'LazyMap';
  }
}
