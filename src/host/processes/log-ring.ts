/**
 * The last `capacity` bytes of a stream, and how many were written in all. Storage grows
 * by doubling up to the capacity, so a silent command costs nothing and a flood costs
 * exactly `capacity`.
 */
export class LogRing {
  private buffer: Buffer = Buffer.alloc(0);
  /** Bytes kept; below the capacity they sit in order from 0, at it they wrap around `head`. */
  private kept = 0;
  /** Where the next byte goes once full: the oldest byte kept. */
  private head = 0;
  private written = 0;
  /** Brings in the bytes kept outside the ring (a flood's, by the addon: spawn/flood-capture.ts). */
  private pullOutside: (() => void) | null = null;

  constructor(readonly capacity: number) {}

  /** Bytes written in all. */
  get total(): number {
    this.pullOutside?.();
    return this.written;
  }

  get keptBytes(): number {
    this.pullOutside?.();
    return this.kept;
  }

  /**
   * While set, the newest bytes may be kept elsewhere: `pull` is called before the ring is read
   * (total, keptBytes, tail) and hands them in with absorb().
   */
  keepOutside(pull: (() => void) | null): void {
    this.pullOutside = pull;
  }

  /**
   * `taken` bytes came since the last bytes written here, of which `last` are the newest:
   * what came between is gone, and so is what was kept before it.
   */
  absorb(last: Buffer, taken: number): void {
    const gone = taken - last.length;
    if (gone > 0) {
      this.written += gone;
      this.kept = 0;
      this.head = 0;
    }
    this.write(last);
  }

  write(chunk: Buffer): void {
    this.written += chunk.length;
    const cap = this.capacity;
    if (cap === 0 || chunk.length === 0) return;
    if (chunk.length >= cap) {
      this.grow(cap);
      chunk.copy(this.buffer, 0, chunk.length - cap);
      this.kept = cap;
      this.head = 0;
      return;
    }
    if (this.kept + chunk.length <= cap) {
      this.grow(Math.min(cap, Math.max(this.kept + chunk.length, this.buffer.length * 2, 4096)));
      chunk.copy(this.buffer, this.kept);
      this.kept += chunk.length;
      this.head = this.kept % cap;
      return;
    }
    this.grow(cap);
    if (this.kept < cap) this.head = this.kept;
    const first = Math.min(chunk.length, cap - this.head);
    chunk.copy(this.buffer, this.head, 0, first);
    chunk.copy(this.buffer, 0, first);
    this.head = (this.head + chunk.length) % cap;
    this.kept = cap;
  }

  /**
   * Where the next bytes may be read straight into (no copy), once the storage is full-sized
   * (a flood fills it within a megabyte): from the oldest byte to the end of the storage. Null
   * while it still grows: write() then. The reader says what it read with commit().
   */
  region(): Buffer | null {
    if (this.capacity === 0 || this.kept < this.capacity) return null;
    return this.buffer.subarray(this.head, this.capacity);
  }

  /** `bytes` were read into the start of region(): they are now the newest bytes kept. */
  commit(bytes: number): void {
    this.written += bytes;
    this.head = (this.head + bytes) % this.capacity;
  }

  /** The last `tailBytes` bytes kept (all of them when 0 or omitted), oldest first. */
  tail(tailBytes = 0): Buffer {
    this.pullOutside?.();
    const want = tailBytes > 0 ? Math.min(tailBytes, this.kept) : this.kept;
    if (want === 0) return Buffer.alloc(0);
    if (this.kept < this.capacity) return Buffer.from(this.buffer.subarray(this.kept - want, this.kept));
    const cap = this.capacity;
    const start = (this.head - want + cap) % cap;
    const out = Buffer.allocUnsafe(want);
    const first = Math.min(want, cap - start);
    this.buffer.copy(out, 0, start, start + first);
    if (first < want) this.buffer.copy(out, first, 0, want - first);
    return out;
  }

  private grow(size: number): void {
    if (this.buffer.length >= size) return;
    const grown = Buffer.alloc(size);
    // Growing happens only while bytes still sit in order from 0.
    this.buffer.copy(grown, 0, 0, this.kept);
    this.buffer = grown;
  }
}
