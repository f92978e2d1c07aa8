// A small layered (Sugiyama-style) layout for directed graphs of boxes, top to bottom:
// break cycles, rank by longest path, give every edge a chain of virtual nodes (its label
// is one of them, so labels never overlap boxes or each other), order each layer to cut
// crossings, then place boxes as close as possible to their neighbours. No randomness and
// no floating-point-order surprises: the same input always gives the same output.
import { orderLayers } from './layer-order.js';
import { bandOf, placeHorizontally, rectOf, stackBands, type Band } from './layer-placement.js';
import { slotOf, type Chain, type Point, type Rect, type Size, type Slot } from './layout-slots.js';

export type { Point, Rect, Size } from './layout-slots.js';

export interface NodeInput extends Size {
  id: string;
}

export interface EdgeInput {
  from: string;
  to: string;
  /** Drawn beside the edge, next to its source; the edge runs down the label's left side. */
  label: Size | null;
}

export interface PlacedEdge {
  /** From the source's border to the target's, in the edge's own direction. */
  points: Point[];
  label: Rect | null;
}

export interface Layout extends Size {
  nodes: Map<string, Rect>;
  /** Same order as the input edges. */
  edges: PlacedEdge[];
}

export function layeredLayout(nodes: readonly NodeInput[], edges: readonly EdgeInput[]): Layout {
  const reversed = breakCycles(nodes, edges);
  const rank = longestPathRanks(nodes, edges, reversed);
  const slots = new Map<string, Slot>();
  for (const node of nodes) {
    slots.set(node.id, { ...node, layer: 2 * (rank.get(node.id) ?? 0), anchor: node.width / 2, virtual: false, left: 0 });
  }
  const chains = edges.map((edge, index) => buildChain(edge, index, reversed[index] ?? false, slots));
  const layers = orderLayers(nodes, chains, slots);
  placeHorizontally(layers, chains);
  const bands = stackBands(layers);
  const last = bands[bands.length - 1];
  return {
    width: Math.max(0, ...[...slots.values()].map((s) => s.left + s.width)),
    height: last ? last.top + last.height : 0,
    nodes: new Map(nodes.map((n) => [n.id, rectOf(slotOf(slots, n.id), bands)])),
    edges: chains.map((chain) => routeChain(chain, chains, bands)),
  };
}

/** Edges that point back to a node on the depth-first stack are drawn upwards. */
function breakCycles(nodes: readonly NodeInput[], edges: readonly EdgeInput[]): boolean[] {
  const reversed = edges.map(() => false);
  const state = new Map<string, 'open' | 'done'>();
  const visit = (id: string): void => {
    state.set(id, 'open');
    edges.forEach((edge, index) => {
      if (edge.from !== id) return;
      const next = state.get(edge.to);
      if (next === 'open') reversed[index] = true;
      else if (next === undefined) visit(edge.to);
    });
    state.set(id, 'done');
  };
  for (const node of nodes) if (!state.has(node.id)) visit(node.id);
  return reversed;
}

function longestPathRanks(nodes: readonly NodeInput[], edges: readonly EdgeInput[], reversed: readonly boolean[]): Map<string, number> {
  const preds = new Map<string, string[]>(nodes.map((n) => [n.id, []]));
  edges.forEach((edge, index) => {
    const [upper, lower] = reversed[index] ? [edge.to, edge.from] : [edge.from, edge.to];
    if (upper !== lower) preds.get(lower)?.push(upper);
  });
  const rank = new Map<string, number>();
  const rankOf = (id: string): number => {
    const known = rank.get(id);
    if (known !== undefined) return known;
    const value = Math.max(-1, ...(preds.get(id) ?? []).map(rankOf)) + 1;
    rank.set(id, value);
    return value;
  };
  for (const node of nodes) rankOf(node.id);
  return rank;
}

/**
 * The slots an edge passes through, one per layer between its ends. The label sits in the

 */
function buildChain(edge: EdgeInput, index: number, reversed: boolean, slots: Map<string, Slot>): Chain {
  const upper = slotOf(slots, reversed ? edge.to : edge.from);
  const lower = slotOf(slots, reversed ? edge.from : edge.to);
  const labelLayer = reversed ? lower.layer - 1 : upper.layer + 1;
  const chain: Chain = { slots: [upper], reversed, label: null };
  for (let layer = upper.layer + 1; layer < lower.layer; layer++) {
    const isLabel = edge.label !== null && layer === labelLayer;
    const size = isLabel && edge.label ? edge.label : { width: 0, height: 0 };
    const slot: Slot = { id: `edge${index}@${layer}`, layer, ...size, anchor: 0, virtual: true, left: 0 };
    slots.set(slot.id, slot);
    chain.slots.push(slot);
    if (isLabel) chain.label = slot;
  }
  chain.slots.push(lower);
  return chain;
}

// ---------------------------------------------------------------------------------------
// Edge routes.

/**
 * Through every band an edge runs straight down at its slot's anchor, so it bends only in
 * the gaps between bands, where there is nothing to cross. Several edges leaving (or
 * entering) one side of a box are spread along that side, in the order of where they go.
 */
function routeChain(chain: Chain, chains: readonly Chain[], bands: readonly Band[]): PlacedEdge {
  const first = chain.slots[0];
  const last = chain.slots[chain.slots.length - 1];
  if (!first || !last) throw new Error('layout: empty edge');
  const points: Point[] = [{ x: portX(first, 'bottom', chain, chains), y: rectOf(first, bands).y + first.height }];
  for (const slot of chain.slots.slice(1, -1)) {
    const band = bandOf(slot, bands);
    const x = slot.left + slot.anchor;
    points.push({ x, y: band.top }, { x, y: band.top + band.height });
  }
  points.push({ x: portX(last, 'top', chain, chains), y: rectOf(last, bands).y });
  if (chain.reversed) points.reverse();
  return { points, label: chain.label ? rectOf(chain.label, bands) : null };
}

function portX(slot: Slot, side: 'top' | 'bottom', chain: Chain, chains: readonly Chain[]): number {
  // The slot each edge at this side of the box leads to, to sort the edges by direction.
  const onSide = chains
    .map((c) => ({ chain: c, next: side === 'bottom' ? (c.slots[0] === slot ? c.slots[1] : undefined) : c.slots[c.slots.length - 1] === slot ? c.slots[c.slots.length - 2] : undefined }))
    .filter((e): e is { chain: Chain; next: Slot } => e.next !== undefined);
  onSide.sort((a, b) => a.next.left + a.next.anchor - (b.next.left + b.next.anchor));
  const index = onSide.findIndex((e) => e.chain === chain);
  const spacing = onSide.length < 2 ? 0 : Math.min(16, (slot.width * 0.8) / (onSide.length - 1));
  return slot.left + slot.anchor + (index - (onSide.length - 1) / 2) * spacing;
}
