// Coordinates for the layered layout: each layer's boxes placed as close as the order and the
// gaps allow to their neighbours, and the layers stacked in bands top to bottom.
import { neighbours, type Chain, type Rect, type Slot } from './layout-slots.js';

const NODE_GAP = 28;
const VIRTUAL_GAP = 10;
const LAYER_GAP = 26;
const PLACE_SWEEPS = 24;


/**
 * Each sweep moves every slot towards the mean of its neighbours in the layer above (or
 * below), as far as the order and the gaps allow; edges between bend points weigh most, so
 * long edges come out straight.
 */
export function placeHorizontally(layers: Slot[][], chains: readonly Chain[]): void {
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
export interface Band {
  top: number;
  height: number;
}

export function stackBands(layers: readonly Slot[][]): Band[] {
  let top = 0;
  return layers.map((layer) => {
    const band = { top, height: Math.max(0, ...layer.map((s) => s.height)) };
    top += band.height + LAYER_GAP;
    return band;
  });
}

export function bandOf(slot: Slot, bands: readonly Band[]): Band {
  return bands[slot.layer] ?? { top: 0, height: 0 };
}

export function rectOf(slot: Slot, bands: readonly Band[]): Rect {
  const band = bandOf(slot, bands);
  return { x: slot.left, y: band.top + (band.height - slot.height) / 2, width: slot.width, height: slot.height };
}
