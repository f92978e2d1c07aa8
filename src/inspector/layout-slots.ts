// The layered layout's working parts, shared by its steps (layered-layout.ts ranks and routes,
// layer-order.ts orders each layer, layer-placement.ts places the boxes): a box in a layer,
// the chain of boxes an edge runs through, and who neighbours whom across layers.

export interface Size {
  width: number;
  height: number;
}

export interface Point {
  x: number;
  y: number;
}

export interface Rect extends Point, Size {}

/** A box in one layer: a real node, an edge's label, or a bend point of a long edge. */
export interface Slot {
  id: string;
  layer: number;
  width: number;
  height: number;
  /** Where edges pass, from the box's left side: the middle for nodes, 0 for labels. */
  anchor: number;
  virtual: boolean;
  left: number;
}

export interface Chain {
  /** Slots from the upper end to the lower end. */
  slots: Slot[];
  reversed: boolean;
  label: Slot | null;
}

export function slotOf(slots: ReadonlyMap<string, Slot>, id: string): Slot {
  const slot = slots.get(id);
  if (!slot) throw new Error(`layout: unknown node ${id}`);
  return slot;
}

export type Neighbours = Map<Slot, { up: Slot[]; down: Slot[] }>;

export function neighbours(chains: readonly Chain[]): Neighbours {
  const map: Neighbours = new Map();
  const entry = (slot: Slot): { up: Slot[]; down: Slot[] } => {
    let found = map.get(slot);
    if (!found) map.set(slot, (found = { up: [], down: [] }));
    return found;
  };
  for (const { slots } of chains) {
    for (let i = 1; i < slots.length; i++) {
      const upper = slots[i - 1];
      const lower = slots[i];
      if (!upper || !lower) continue;
      entry(upper).down.push(lower);
      entry(lower).up.push(upper);
    }
  }
  return map;
}

