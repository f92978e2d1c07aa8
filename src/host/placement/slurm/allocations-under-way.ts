// The allocations being asked for, by workspace: the workspace's actor is hosted meanwhile
// (core/create-while-placing.ts), so its stop (a TTL, a shutdown, a failed actor) may come first.
// Withdrawn, a request ends its salloc at once and cancels what it queued (allocation.ts).

export class AllocationsUnderWay {
  private readonly underWay = new Map<string, { withdraw: AbortController; done: Promise<unknown> }>();

  /** Runs `ask` for the workspace; it may be withdrawn (its signal aborted) until it answered. */
  async track<T>(wsId: string, ask: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const entry = { withdraw: new AbortController(), done: Promise.resolve() as Promise<unknown> };
    const done = ask(entry.withdraw.signal);
    entry.done = done;
    this.underWay.set(wsId, entry);
    try {
      return await done;
    } finally {
      if (this.underWay.get(wsId) === entry) this.underWay.delete(wsId);
    }
  }

  /** Withdraws the workspace's request; resolves once it answered (withdrawn, or granted just before). */
  async withdraw(wsId: string): Promise<void> {
    const entry = this.underWay.get(wsId);
    if (!entry) return;
    entry.withdraw.abort();
    await entry.done.catch(() => undefined);
  }

  /** The runtime is exiting: salloc is ended now (the abort's listeners run synchronously). Whether one was under way. */
  withdrawNow(wsId: string): boolean {
    const entry = this.underWay.get(wsId);
    entry?.withdraw.abort();
    return entry !== undefined;
  }

  async withdrawAll(): Promise<void> {
    await Promise.all([...this.underWay.keys()].map((wsId) => this.withdraw(wsId)));
  }
}
