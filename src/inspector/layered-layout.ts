// A small layered (Sugiyama-style) layout for directed graphs of boxes, top to bottom:
// break cycles, rank by longest path, give every edge a chain of virtual nodes (its label
// is one of them, so labels never overlap boxes or each other), order each layer to cut
// crossings, then place boxes as close as possible to their neighbours. No randomness and
// no floating-point-order surprises: the same input always gives the same output.

export interface Size {
  width: number;
  height: number;
}

export interface NodeInput extends Size {
  id: string;
}

export interface EdgeInput {
  from: string;
  to: string;
  /** Drawn beside the edge, next to its source; the edge runs down the label's left side. */
  label: Size | null;
}

export interface Point {
  x: number;
  y: number;
}

export interface Rect extends Point, Size {}

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

const NODE_GAP = 28;
const VIRTUAL_GAP = 10;
const LAYER_GAP = 26;
const ORDER_SWEEPS = 12;
const PLACE_SWEEPS = 24;

/** A box in one layer: a real node, an edge's label, or a bend point of a long edge. */
interface Slot {
  id: string;
  layer: number;
  width: number;
  height: number;
  /** Where edges pass, from the box's left side: the middle for nodes, 0 for labels. */
  anchor: number;
  virtual: boolean;
  left: number;
}

interface Chain {
  /** Slots from the upper end to the lower end. */
  slots: Slot[];
  reversed: boolean;
  label: Slot | null;
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

function slotOf(slots: ReadonlyMap<string, Slot>, id: string): Slot {
  const slot = slots.get(id);
  if (!slot) throw new Error(`layout: unknown node ${id}`);
  return slot;
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
 * layer next to the edge's source, so a reader finds it where the arrow starts.
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
// Ordering within layers.

type Neighbours = Map<Slot, { up: Slot[]; down: Slot[] }>;

function neighbours(chains: readonly Chain[]): Neighbours {
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

/** Layers ordered by repeated barycentre sweeps, keeping the ordering with fewest crossings. */
function orderLayers(nodes: readonly NodeInput[], chains: readonly Chain[], slots: ReadonlyMap<string, Slot>): Slot[][] {
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

// ---------------------------------------------------------------------------------------
// Coordinates.

/**
 * Each sweep moves every slot towards the mean of its neighbours in the layer above (or
 * below), as far as the order and the gaps allow; edges between bend points weigh most, so
 * long edges come out straight.
 */
function placeHorizontally(layers: Slot[][], chains: readonly Chain[]): void {
  for (const layer of layers) packLayer(layer, layer.map(() => 0));
  const links = neighbours(chains);
  for (let sweep = 0; sweep < PLACE_SWEEPS; sweep++) {
    const last = sweep === PLACE_SWEEPS - 1;
    const down = sweep % 2 === 0;
    const order = down ? [...layers.keys()] : [...layers.keys()].reverse();
    for (const index of order) {
      const layer = layers[index] ?? [];
      const desired = layer.map((slot) => {
        const entry = links.get(slot);
        const adjacent = last ? [...(entry?.up ?? []), ...(entry?.down ?? [])] : ((down ? entry?.up : entry?.down) ?? []);
        return desiredAnchor(slot, adjacent);
      });
      packLayer(layer, desired);
    }
  }
  // The sweeps drift freely; the leftmost box ends at 0.
  const all = layers.flat();
  const minLeft = all.length === 0 ? 0 : Math.min(...all.map((s) => s.left));
  for (const slot of all) slot.left -= minLeft;
}

function desiredAnchor(slot: Slot, adjacent: readonly Slot[]): number {
  if (adjacent.length === 0) return slot.left + slot.anchor;
  let sum = 0;
  let weights = 0;
  for (const other of adjacent) {
    const weight = slot.virtual && other.virtual ? 8 : slot.virtual || other.virtual ? 2 : 1;
    sum += weight * (other.left + other.anchor);
    weights += weight;
  }
  return sum / weights;
}

/**
 * The left sides closest (least squares) to the wanted anchors that keep the order and the
 * gaps: with the gaps taken out, that is an isotonic regression, solved by pooling adjacent
 * violators.
 */
function packLayer(layer: Slot[], wantedAnchors: readonly number[]): void {
  const offsets: number[] = [];
  let offset = 0;
  layer.forEach((slot, i) => {
    offsets.push(offset);
    const next = layer[i + 1];
    offset += slot.width + (next && (slot.virtual || next.virtual) ? VIRTUAL_GAP : NODE_GAP);
  });
  const targets = layer.map((slot, i) => (wantedAnchors[i] ?? 0) - slot.anchor - (offsets[i] ?? 0));
  const fitted = isotonic(targets);
  layer.forEach((slot, i) => {
    slot.left = (fitted[i] ?? 0) + (offsets[i] ?? 0);
  });
}

/** The non-decreasing sequence closest to `values` in least squares. */
function isotonic(values: readonly number[]): number[] {
  const blocks: Array<{ sum: number; count: number }> = [];
  for (const value of values) {
    const block = { sum: value, count: 1 };
    // Merge with the blocks before while they would sit higher than this one.
    for (let below = blocks.at(-1); below && below.sum / below.count > block.sum / block.count; below = blocks.at(-1)) {
      block.sum += below.sum;
      block.count += below.count;
      blocks.pop();
    }
    blocks.push(block);
  }
  return blocks.flatMap((block) => Array.from({ length: block.count }, () => block.sum / block.count));
}

/** A layer's horizontal strip: its boxes are centred in it, edges cross it straight. */
interface Band {
  top: number;
  height: number;
}

function stackBands(layers: readonly Slot[][]): Band[] {
  let top = 0;
  return layers.map((layer) => {
    const band = { top, height: Math.max(0, ...layer.map((s) => s.height)) };
    top += band.height + LAYER_GAP;
    return band;
  });
}

function bandOf(slot: Slot, bands: readonly Band[]): Band {
  return bands[slot.layer] ?? { top: 0, height: 0 };
}

function rectOf(slot: Slot, bands: readonly Band[]): Rect {
  const band = bandOf(slot, bands);
  return { x: slot.left, y: band.top + (band.height - slot.height) / 2, width: slot.width, height: slot.height };
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
