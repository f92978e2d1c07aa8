import { MAX_SHAPE_KEYS, MAX_SHAPE_NODES, MAX_SHAPES } from './wire-format.js';

/** A node of the key tree: the keys read so far lead to it; `id` is its shape's number, or -1. */
interface ShapeNode {
  id: number;
  next: Map<string, ShapeNode> | null;
}

/**
 * The record shapes one ordered stream of the worker wire has told (wire-format.ts), as a tree
 * of keys in order: its encoder's half (the decoder keeps the numbers it read).
 */
export class ShapeTable {
  private root: ShapeNode = { id: -1, next: null };
  private count = 0;
  private nodes = 0;
  /** By its first key, the shape last found in the tree: its number and keys. */
  private readonly last = new Map<string, { id: number; keys: string[] }>();
  /** The table is full: it must start again (and say so in the stream) before the next value. */
  full = false;
  /** The last shapeOf numbered a new shape: the stream must define it before its record. */
  isNew = false;

  reset(): void {
    this.root = { id: -1, next: null };
    this.last.clear();
    this.count = 0;
    this.nodes = 0;
    this.full = false;
  }

  /**
   * The number of the object's shape (new ones numbered as they come); -1: written as a map.
   * The shape last met with the same first key is tried first: most records are of a shape met
   * before (a command's context, 26 keys, four times a run), and comparing keys one by one costs
   * far less than a step down the tree (a Map lookup) for each.
   */
  shapeOf(value: Record<string, unknown>): number {
    this.isNew = false;
    let first: string | undefined;
    for (const key in value) {
      first = key;
      break;
    }
    if (first === undefined) return -1;
    const last = this.last.get(first);
    if (last !== undefined && sameKeys(value, last.keys)) return last.id;
    const id = this.inTree(value);
    if (id >= 0) {
      const keys: string[] = [];
      for (const key in value) keys.push(key);
      this.last.set(first, { id, keys });
    }
    return id;
  }

  private inTree(value: Record<string, unknown>): number {
    let node = this.root;
    let count = 0;
    for (const key in value) {
      // A map keyed by ids (children, labels by command key) has a new shape at every change: a map, not a record.
      if (count === 0 && looksLikeId(key)) return -1;
      if (++count > MAX_SHAPE_KEYS) return -1;
      let next = node.next?.get(key);
      if (next === undefined) {
        if (this.nodes >= MAX_SHAPE_NODES) {
          this.full = true;
          return -1;
        }
        this.nodes++;
        next = { id: -1, next: null };
        (node.next ??= new Map()).set(key, next);
      }
      node = next;
    }
    if (node.id >= 0) return node.id;
    if (this.count >= MAX_SHAPES) {
      this.full = true;
      return -1;
    }
    node.id = this.count++;
    this.isNew = true;
    return node.id;
  }
}

function sameKeys(value: Record<string, unknown>, keys: readonly string[]): boolean {
  let i = 0;
  for (const key in value) if (key !== keys[i++]) return false;
  return i === keys.length;
}

/** A ULID (26 characters, time first): the runtime's ids. */
function looksLikeId(key: string): boolean {
  if (key.length !== 26) return false;
  const first = key.charCodeAt(0);
  return first >= 0x30 && first <= 0x37;
}
