import type { Deferred } from '../processes/deferred.js';

// A Deferred whose promise is made only when someone asks for it. A workspace holds two
// (started, stopped) for its whole life; a promise with its resolving functions costs ~400
// bytes, and an idle workspace's `stopped` is read by nobody until it stops. Once settled,
// the resolving functions are let go.

const PENDING = 0;
const RESOLVED = 1;
const REJECTED = 2;

class LazyDeferred<T> implements Deferred<T> {
  private state: typeof PENDING | typeof RESOLVED | typeof REJECTED = PENDING;
  private outcome: unknown = undefined;
  private made: Promise<T> | null = null;
  private settle: { resolve: (value: T) => void; reject: (error: unknown) => void } | null = null;

  get settled(): boolean {
    return this.state !== PENDING;
  }

  get promise(): Promise<T> {
    if (this.made) return this.made;
    if (this.state === RESOLVED) return (this.made = Promise.resolve(this.outcome as T));
    if (this.state === REJECTED) return (this.made = Promise.reject(this.outcome));
    return (this.made = new Promise<T>((resolve, reject) => (this.settle = { resolve, reject })));
  }

  resolve(value: T): void {
    if (this.state !== PENDING) return;
    this.state = RESOLVED;
    this.outcome = value;
    this.settle?.resolve(value);
    this.settle = null;
  }

  reject(error: unknown): void {
    if (this.state !== PENDING) return;
    this.state = REJECTED;
    this.outcome = error;
    this.settle?.reject(error);
    this.settle = null;
  }
}

export function lazyDeferred<T>(): Deferred<T> {
  return new LazyDeferred<T>();
}
