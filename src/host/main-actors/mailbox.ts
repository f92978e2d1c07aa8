/**
 * A main-thread actor's mailbox: messages are handled one at a time, in the order they were
 * sent. A message sent while another is handled (by the handler itself, or by a callback it
 * set off) waits its turn, so a handler always sees the actor's state as the last one left it.
 * Every completion (a spawn done, an exit, a timer, a sample) comes back in as a message.
 */
export class Mailbox<M> {
  private readonly queue: M[] = [];
  private head = 0;
  private handling = false;

  constructor(private readonly handle: (message: M) => void) {}

  send(message: M): void {
    this.queue.push(message);
    if (this.handling) return;
    this.handling = true;
    let failure: { error: unknown } | null = null;
    try {
      while (this.head < this.queue.length) {
        const next = this.queue[this.head]!;
        this.queue[this.head++] = undefined as M;
        try {
          this.handle(next);
        } catch (error) {
          // The rest of the queue is still handled; the first failure reaches the sender, as a
          // direct call's would.
          failure ??= { error };
        }
      }
    } finally {
      this.queue.length = 0;
      this.head = 0;
      this.handling = false;
    }
    if (failure) throw failure.error;
  }
}
