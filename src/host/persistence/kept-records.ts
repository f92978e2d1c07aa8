// Where each workspace's record is in the last snapshot file's bytes (snapshot-encoder.ts), kept
// for the next write. Columns in the order the records were written, not an object and a map
// entry per workspace: a cold write of 10,000 workspaces spent a sixth as much on that
// bookkeeping as on packing the records. The next write asks in the same order (the registry's),
// so a cursor finds each at once; an index by id is built only when the order differs (a
// workspace came or went before it).

export class KeptRecords {
  private readonly ids: string[] = [];
  private readonly counts: number[] = [];
  private readonly placements: Array<string | undefined> = [];
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private index: Map<string, number> | null = null;
  private cursor = 0;

  /** The record of workspace `id`, at change count `changes`, is `bytes[start, end)` of the file; `placement` as placementOf gives it. */
  add(id: string, changes: number, placement: string | undefined, start: number, end: number): void {
    this.ids.push(id);
    this.counts.push(changes);
    this.placements.push(placement);
    this.starts.push(start);
    this.ends.push(end);
  }

  /** Where the record of `id` is among these, or -1; looked for first right after the last one found. */
  find(id: string): number {
    const at = this.cursor;
    if (at < this.ids.length && this.ids[at] === id) {
      this.cursor = at + 1;
      return at;
    }
    if (this.index === null) {
      this.index = new Map();
      // The first of a duplicate id wins, as the first is found first in order.
      for (let i = this.ids.length - 1; i >= 0; i--) this.index.set(this.ids[i]!, i);
    }
    const found = this.index.get(id);
    if (found === undefined) return -1;
    this.cursor = found + 1;
    return found;
  }

  /** The next find starts at the first record again (a new write, or a new collect, walks them from the start). */
  rewind(): void {
    this.cursor = 0;
  }

  changesAt(at: number): number {
    return this.counts[at]!;
  }

  placementAt(at: number): string | undefined {
    return this.placements[at];
  }

  startAt(at: number): number {
    return this.starts[at]!;
  }

  endAt(at: number): number {
    return this.ends[at]!;
  }
}
