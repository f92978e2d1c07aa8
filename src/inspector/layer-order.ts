// Ordering within layers for the layered layout: repeated barycentre sweeps, keeping the
// ordering with the fewest crossings (the input order first: the caller's order means something).
import { neighbours, slotOf, type Chain, type Neighbours, type Slot } from './layout-slots.js';

const ORDER_SWEEPS = 12;

/** Layers ordered by repeated barycentre sweeps, keeping the ordering with fewest crossings. */
export function orderLayers(nodes: ReadonlyArray<{ id: string }>, chains: readonly Chain[], slots: ReadonlyMap<string, Slot>): Slot[][] {
  const depth = Math.max(0, ...[...slots.values()].map((s) => s.layer)) + 1;
  const layers: Slot[][] = Array.from({ length: depth }, () => []);
  // Input order first (the caller lists nodes in a meaningful order), then edge order.
  for (const node of nodes) {
    const slot = slotOf(slots, node.id);
    layers[slot.layer]?.push(slot);
  }
  for (const chain of chains) for (const slot of chain.slots) if (slot.virtual) layers[slot.layer]?.push(slot);
  const links = neighbours(chains);
  let best = layers.map((layer) => [...layer]);
  let bestCrossings = crossings(best, links);
  for (let sweep = 0; sweep < ORDER_SWEEPS && bestCrossings > 0; sweep++) {
    const down = sweep % 2 === 0;
    const range = down ? [...layers.keys()].slice(1) : [...layers.keys()].reverse().slice(1);
    for (const index of range) {
      const reference = layers[down ? index - 1 : index + 1] ?? [];
      layers[index] = sortByBarycentre(layers[index] ?? [], reference, links, down);
    }
    const count = crossings(layers, links);
    if (count < bestCrossings) {
      best = layers.map((layer) => [...layer]);
      bestCrossings = count;
    }
  }
  return best;
}

function sortByBarycentre(layer: readonly Slot[], reference: readonly Slot[], links: Neighbours, fromAbove: boolean): Slot[] {
  const position = new Map(reference.map((slot, i) => [slot, i]));
  const keyed = layer.map((slot, index) => {
    const adjacent = (fromAbove ? links.get(slot)?.up : links.get(slot)?.down) ?? [];
    const at = adjacent.map((s) => position.get(s)).filter((p): p is number => p !== undefined);
    // A slot with no neighbour there keeps its place relative to the others.
    const barycentre = at.length === 0 ? (index / Math.max(1, layer.length)) * reference.length : at.reduce((a, b) => a + b, 0) / at.length;
    return { slot, barycentre, index };
  });
  keyed.sort((a, b) => a.barycentre - b.barycentre || a.index - b.index);
  return keyed.map((k) => k.slot);
}

function crossings(layers: readonly Slot[][], links: Neighbours): number {
  let total = 0;
  for (let i = 0; i + 1 < layers.length; i++) {
    const upper = new Map((layers[i] ?? []).map((s, p) => [s, p]));
    const lower = new Map((layers[i + 1] ?? []).map((s, p) => [s, p]));
    const segments: Array<[number, number]> = [];
    for (const [slot, p] of upper) {
      for (const next of links.get(slot)?.down ?? []) {
        const q = lower.get(next);
        if (q !== undefined) segments.push([p, q]);
      }
    }
    for (let a = 0; a < segments.length; a++) {
      for (let b = a + 1; b < segments.length; b++) {
        const [p1, q1] = segments[a] ?? [0, 0];
        const [p2, q2] = segments[b] ?? [0, 0];
        if ((p1 - p2) * (q1 - q2) < 0) total++;
      }
    }
  }
  return total;
}
