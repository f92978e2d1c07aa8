import { readFileSync } from 'node:fs';
import type { KernelPipe } from './kernel-pipes.js';
import { loadSpawnerAddon } from './native-addon.js';
import type { SpawnedProcess } from './spawner.js';

// An untapped pipeline's edges, grown to 1 MiB. A pipe holds 64 KiB by default (bash's too): a
// fast writer and its reader then wake each other every 64 KiB, and every stage pays for the
// switches — 2 GiB through `head | cat | cat` took ~25% less CPU with 1 MiB pipes (2026-12,
// bench (j)). The bytes never pass the runtime, which cannot tell a fast edge from a slow one
// (a tapped edge is grown once its pump moves a full pipe: native/flow-pump.c), so every edge is
// grown as it is made — within a budget. A grown pipe costs the user's pipe allowance
// (fs.pipe-user-pages-soft, counted over all the user's processes) 256 pages instead of 16, and
// a user past it has every new pipe made with the kernel's minimum (2 pages), any program's, not
// only ours; the kernel refuses a growth that would pass it (the edge then keeps its size, the
// spawn goes on). So at most a quarter of that allowance is spent here (16 pipes of the default
// 16384 pages; none below 1024), counted over the process — its runtime, or all its runtimes
// when it has several, since they spend one user's allowance — from the grow until every node
// of their attempt has exited; beyond, an edge keeps the kernel's default.

export const GROWN_EDGE_BYTES = 1024 * 1024;
/** The most grown at once, whatever the allowance: 16 MiB of pipes is plenty of edges. */
export const GROWN_EDGES_MAX = 16;
const GROWN_EDGE_PAGES = GROWN_EDGE_BYTES / 4096;
const SOFT_LIMIT_FILE = '/proc/sys/fs/pipe-user-pages-soft';

/** Grown pipes allowed at once under a soft allowance of `softPages` (0: none, the kernel's "no limit"). */
export function grownEdgesBudget(softPages: number): number {
  if (softPages === 0) return GROWN_EDGES_MAX;
  return Math.min(GROWN_EDGES_MAX, Math.floor(softPages / 4 / GROWN_EDGE_PAGES));
}

let budget: number | undefined;

/** This process's budget: from the user's soft allowance as the kernel has it, read once. */
export function grownEdgesAllowed(): number {
  if (budget === undefined) {
    let soft: number;
    try {
      soft = Number.parseInt(readFileSync(SOFT_LIMIT_FILE, 'latin1'), 10);
    } catch {
      soft = Number.NaN; // no /proc (or not Linux's): the kernel's default allowance
    }
    budget = grownEdgesBudget(Number.isFinite(soft) && soft >= 0 ? soft : 16384);
  }
  return budget;
}

let grownNow = 0;
type GrowCall = (fd: number) => number;
let addonGrow: GrowCall | null | undefined;

function nativeGrow(): GrowCall | null {
  if (addonGrow === undefined) {
    try {
      const addon = loadSpawnerAddon();
      addonGrow = addon.growPipe ? addon.growPipe.bind(addon) : null;
    } catch {
      addonGrow = null;
    }
  }
  return addonGrow;
}

/** Grown edges alive now, over the process. */
export function grownEdges(): number {
  return grownNow;
}

/**
 * Grows what the budget allows of `pipes` (in order); the call returned gives their part of the
 * budget back, once, and is to be called when no process holds them any more.
 */
export function growEdges(pipes: readonly KernelPipe[]): () => void {
  const grow = nativeGrow();
  let taken = 0;
  for (const pipe of pipes) {
    if (!grow || grownNow >= grownEdgesAllowed()) break;
    // The kernel refuses past the allowance (or pipe-max-size): the pipe keeps its size, and the
    // spawn goes on with it.
    if (grow(pipe.writeFd) >= GROWN_EDGE_BYTES) {
      grownNow++;
      taken++;
    }
  }
  let given = taken === 0;
  return () => {
    if (given) return;
    given = true;
    grownNow -= taken;
  };
}

/**
 * Holds an attempt's part of the budget while its nodes live: each node is told as it starts,
 * `started()` once no more will start; `giveBack` runs when both are past.
 */
export function holdWhileNodesLive(giveBack: () => void): { node(spawned: SpawnedProcess): void; started(): void } {
  let running = 0;
  let starting = true;
  const check = () => {
    if (!starting && running === 0) giveBack();
  };
  return {
    node(spawned) {
      running++;
      spawned.onExit(() => {
        running--;
        check();
      });
    },
    started() {
      starting = false;
      check();
    },
  };
}
