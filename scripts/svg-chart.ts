// The SVG renderer lives with the inspector, which draws the same charts live.
export * from '../src/inspector/svg-chart.js';
