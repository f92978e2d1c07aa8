/** Where the runtime reads the time. Tests inject a manual clock (shuma/testing) to move it by hand. */
export interface RuntimeClock {
  now(): number;
  /** A clock that moves by hand tells the runtime, which moves every actor's timers with it. */
  onAdvance?(listener: (now: number) => Promise<void>): () => void;
  /** Present on manual clocks: the actors' timers then run on simulated time. */
  readonly manual?: boolean;
}

export const systemClock: RuntimeClock = { now: () => Date.now() };
