// The SVG chart's typography and spacing, shared by the sizing of boxes (svg-boxes.ts) and
// their drawing (svg-render.ts). Text is monospace so its width can be computed rather than
// measured: no browser is needed to draw a chart.

export const FONT = 12;
export const TITLE_FONT = 13;
export const CHAR = FONT * 0.61;
export const TITLE_CHAR = TITLE_FONT * 0.61;
export const LINE = 16;
export const PAD = 10;
/** Action lists wrap at commas past this many characters. */
export const WRAP = 36;

/** A state box's name and, under a rule, its description lines. */
export function headerHeightOf(lines: readonly string[]): number {
  return LINE + PAD + (lines.length > 0 ? 6 + lines.length * LINE : 0);
}
