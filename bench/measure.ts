// Small measuring tools shared by the benchmark sections: clocks, rates, quantiles, heap,
// and the result table.
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** One line of the result table: the same figure for shuma and for the baseline. */
export interface Row {
  what: string;
  unit: string;
  shuma: number;
  /** NaN when there is nothing to compare with. */
  baseline: number;
}

/** A heading line between the rows of two sections. */
export interface Heading {
  heading: string;
}

export type Line = Row | Heading;

export const now = (): number => performance.now();

/** Lets queued I/O callbacks and timers run, e.g. between a burst of sends and the next. */
export function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index]!;
}

export interface RateOptions {
  /** Operations kept in flight at once. */
  concurrency: number;
  /** Keep starting operations until this much time has passed… */
  budgetMs: number;
  /** …but start at least this many, and never more than `maxOps`. */
  minOps: number;
  maxOps: number;
}

export interface Rate {
  ops: number;
  ms: number;
  perSecond: number;
}

/**
 * Runs `op` over and over with `concurrency` in flight, for about `budgetMs`. A time budget
 * rather than a fixed count keeps the run short when each operation is slow (a fork of a
 * process holding 1 GiB) and precise when it is fast.
 */
export async function rateOf(op: () => Promise<void>, options: RateOptions): Promise<Rate> {
  const start = now();
  let started = 0;
  const keepGoing = () =>
    started < options.maxOps && (started < options.minOps || now() - start < options.budgetMs);
  const lane = async () => {
    while (keepGoing()) {
      started++;
      await op();
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, lane));
  const ms = now() - start;
  return { ops: started, ms, perSecond: (started * 1000) / ms };
}

/** The better of the rates: other work shares this machine, and it only ever slows a run down. */
export function best(rates: readonly Rate[]): Rate {
  return rates.reduce((a, b) => (b.perSecond > a.perSecond ? b : a));
}

function collectGarbage(): void {
  if (typeof globalThis.gc !== 'function') {
    throw new Error('the benchmark needs --expose-gc: run it with `npm run bench`');
  }
  // Twice: the first pass may only unlink what the second one frees (weak refs, finalizers).
  globalThis.gc();
  globalThis.gc();
}

/** Main-thread heap in use after a full collection. */
export function settledHeap(): number {
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

export function assertGcExposed(): void {
  collectGarbage();
}

export function rssMiB(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

/** Live child processes of this process: the benchmark must leave none behind. */
export function liveChildren(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'latin1');
    } catch {
      continue; // exited while we looked
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[1]) === process.pid && fields[0] !== 'Z') out.push(Number(name));
  }
  return out;
}

// ── the table ────────────────────────────────────────────────────────────────────────

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '—';
  const magnitude = Math.abs(value);
  const digits = magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : magnitude >= 1 ? 2 : 3;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function formatRatio(row: Row): string {
  const ratio = row.shuma / row.baseline;
  return Number.isFinite(ratio) ? `${ratio.toFixed(ratio >= 10 ? 1 : 2)}×` : '—';
}

/** Prints `what | shuma | baseline | ratio`, numbers right-aligned; ratio is shuma/baseline. */
export function printTable(lines: readonly Line[]): void {
  const header = ['what', 'shuma', 'baseline', 'ratio'];
  const cells = lines.map((line) =>
    'heading' in line
      ? null
      : [
          `${line.what} [${line.unit}]`,
          formatNumber(line.shuma),
          formatNumber(line.baseline),
          formatRatio(line),
        ],
  );
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((row) => (row ? row[column]!.length : 0))),
  );
  const render = (row: string[]) =>
    row.map((cell, column) => (column === 0 ? cell.padEnd(widths[0]!) : cell.padStart(widths[column]!))).join(' | ');
  const rule = widths.map((width) => '-'.repeat(width)).join('-+-');
  console.log(render(header));
  console.log(rule);
  lines.forEach((line, index) => {
    const row = cells[index];
    if (row) console.log(render(row));
    else if ('heading' in line) console.log(`${index === 0 ? '' : '\n'}${line.heading}`);
  });
}

/** Progress goes to stderr, so that stdout holds the table alone. */
export function progress(message: string): void {
  process.stderr.write(`[bench ${(process.uptime()).toFixed(1).padStart(5)} s] ${message}\n`);
}
