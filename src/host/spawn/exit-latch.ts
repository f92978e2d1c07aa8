// A process's exit, remembered: a supervisor must never lose one, and child_process tells its
// 'exit' only to the listeners it has at that moment.

export type ExitListener = (code: number | null, signal: NodeJS.Signals | null) => void;

/**
 * The exit, remembered: a listener added after it still hears it, once — but never during
 * the call that adds it. The host registers a run and then reports it SPAWNED in one go; an
 * exit told in between would reach the actor before the spawn (a pipeline's first node can
 * exit while the next one starts).
 */
export class ExitLatch {
  private result: [number | null, NodeJS.Signals | null] | null = null;
  private readonly listeners: ExitListener[] = [];

  settle(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.result) return;
    this.result = [code, signal];
    for (const listener of this.listeners.splice(0)) listener(code, signal);
  }

  listen(listener: ExitListener): void {
    const result = this.result;
    if (result) queueMicrotask(() => listener(...result));
    else this.listeners.push(listener);
  }
}
