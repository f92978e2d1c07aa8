import type { Chart } from '../machines/chart.js';
import { layoutScope, transitionText } from './svg-boxes.js';
import { CHAR, FONT, LINE, PAD, TITLE_FONT } from './svg-metrics.js';
import { escapeXml, fmt, renderScope } from './svg-render.js';

// A state chart drawn as SVG without a browser (docs/diagrams/*.svg and the inspector's page):
// the title and the machine-wide handlers on top, then the root's layout. What goes in each
// box is svg-boxes.ts, drawing them svg-render.ts, on layered-layout.ts.

const MARGIN = 20;
const FONT_FAMILY = 'DejaVu Sans Mono, Menlo, Consolas, monospace';

export interface SvgOptions {
  title: string;
  subtitle: string;
  /**
   * Wraps each state's box in `<g data-state="path">`: the inspector finds the current state's
   * box by it to highlight it. Off for the committed diagrams, whose text it would change.
   */
  stateIds?: boolean;
}

export function chartToSvg(chart: Chart, options: SvgOptions): string {
  const root = layoutScope(chart, chart.root);
  const header = headerLines(chart, options);
  const headerHeight = header.length * LINE + PAD * 2;
  const width = Math.max(root.layout.width, ...header.map((l) => l.text.length * CHAR)) + MARGIN * 2;
  const height = headerHeight + root.layout.height + MARGIN * 2;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${fmt(width)}" height="${fmt(height)}" viewBox="0 0 ${fmt(width)} ${fmt(height)}" font-family="${FONT_FAMILY}" font-size="${FONT}">`,
    `<title>${escapeXml(options.title)}</title>`,
    STYLE,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ...header.map((line, i) => `<text x="${MARGIN}" y="${fmt(MARGIN + LINE * (i + 1))}" class="${line.cls}">${escapeXml(line.text)}</text>`),
    ...renderScope(root, { x: MARGIN, y: MARGIN + headerHeight }, options.stateIds ?? false),
    '</svg>',
    '',
  ].join('\n');
}

const STYLE = `<defs>
<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#334155"/></marker>
<style>
.state{fill:#eef2ff;stroke:#4338ca;stroke-width:1.2}
.compound{fill:#f8fafc;stroke:#475569;stroke-width:1.2}
.final{fill:none;stroke:#4338ca;stroke-width:1}
.sep{stroke:#a5b4fc;stroke-width:1}
.edge{fill:none;stroke:#334155;stroke-width:1.2}
.edge.after{stroke-dasharray:6 4}
.edge.always{stroke-dasharray:2 3}
.label-bg{fill:#ffffff;fill-opacity:0.85}
.name{font-weight:bold;font-size:${TITLE_FONT}px;fill:#1e1b4b}
.desc{fill:#334155;font-size:11px}
.ev{font-weight:bold;fill:#0f172a}
.guard{fill:#b45309}
.act{fill:#475569}
.note{fill:#64748b;font-style:italic}
.title{font-weight:bold;font-size:16px;fill:#0f172a}
.subtitle{fill:#64748b;font-size:11px}
.global{fill:#0f172a}
</style>
</defs>`;

interface HeaderLine {
  text: string;
  cls: 'title' | 'subtitle' | 'global';
}

function headerLines(chart: Chart, options: SvgOptions): HeaderLine[] {
  const handlers = chart.transitions.filter((t) => t.source === '');
  return [
    { text: options.title, cls: 'title' },
    { text: options.subtitle, cls: 'subtitle' },
    { text: 'solid: event · dashed: after(delay) · dotted: always · double border: final state', cls: 'subtitle' },
    ...handlers.map((t): HeaderLine => ({ text: `In every state: ${transitionText(t)}`, cls: 'global' })),
  ];
}
