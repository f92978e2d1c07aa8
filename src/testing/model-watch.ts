import { readFile } from 'node:fs/promises';
import type { ActorSnapshot, StateValue } from '../protocol/actor-records.js';

// Watching a real actor while a model path is driven: every snapshot it publishes is kept, so
// a step can check both where the actor ended up and every state it passed through on the way.

/** 'running', 'reaping.terminating'… : a state value as one dotted path. */
export function stateName(value: StateValue | undefined | null): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  const [key, inner] = Object.entries(value)[0] ?? [];
  return key === undefined ? '' : inner === undefined ? key : `${key}.${stateName(inner)}`;
}

export interface SnapshotSource {
  getSnapshot(): ActorSnapshot | null;
  subscribe(observer: (snapshot: ActorSnapshot) => void): () => void;
}

export class ActorWatch {
  private seen: string[] = [];
  private readonly waiters = new Set<() => void>();
  private readonly unsubscribe: () => void;

  constructor(private readonly source: SnapshotSource) {
    this.unsubscribe = source.subscribe((snapshot) => {
      this.seen.push(stateName(snapshot.value));
      for (const wake of [...this.waiters]) wake();
    });
  }

  get snapshot(): ActorSnapshot | null {
    return this.source.getSnapshot();
  }

  /** The states published since the last call (in order), and forgets them. */
  takeSeen(): string[] {
    const seen = this.seen;
    this.seen = [];
    return seen;
  }

  /**
   * Resolves with the actor's snapshot once `matches` holds for it (now or after its next
   * snapshots); rejects with `describe()`'s account of what was expected after `timeoutMs`, or at
   * once when the actor ended in a snapshot that does not match.
   */
  until(matches: (snapshot: ActorSnapshot | null) => boolean, describe: () => string, timeoutMs: number): Promise<ActorSnapshot | null> {
    if (matches(this.snapshot)) return Promise.resolve(this.snapshot);
    if (this.snapshot && this.snapshot.status !== 'active') {
      return Promise.reject(new Error(`the actor ended (${this.snapshot.status}) elsewhere: ${describe()}`));
    }
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      const check = () => {
        const snapshot = this.snapshot;
        if (matches(snapshot)) {
          done();
          resolve(snapshot);
        } else if (snapshot && snapshot.status !== 'active') {
          // An actor that is done changes no more: no use waiting for the timeout.
          done();
          reject(new Error(`the actor ended (${snapshot.status}) elsewhere: ${describe()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms: ${describe()}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  close(): void {
    this.unsubscribe();
    this.waiters.clear();
  }
}

/** Whether `pid` names a live (not zombie) process. */
export async function processAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
