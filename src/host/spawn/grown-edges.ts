import type { KernelPipe } from './kernel-pipes.js';
import { loadSpawnerAddon } from './native-addon.js';
import type { SpawnedProcess } from './spawner.js';

// An untapped pipeline's edges, grown to 1 MiB. A pipe holds 64 KiB by default (bash's too): a
// fast writer and its reader then wake each other every 64 KiB, and every stage pays for the
// switches — 2 GiB through `head | cat | cat` took ~25% less CPU with 1 MiB pipes (2026-12,
// bench (j)). The bytes never pass the runtime, which cannot tell a fast edge from a slow one
// (a tapped edge is grown once its pump moves a full pipe: native/flow-pump.c), so every edge is
// grown as it is made — within a budget. Each grown pipe costs the user's pipe allowance 256
// pages (fs.pipe-user-pages-soft, 16384 by default), and a user past it has every new pipe made
// with 2 pages, any program's, not only ours. So at most GROWN_EDGES_BUDGET grown pipes live at
// once over the runtime (a quarter of the default allowance), counted from the grow until every
// node of their attempt has exited; beyond, an edge keeps the kernel's default.

export const GROWN_EDGES_BUDGET = 16;
export const GROWN_EDGE_BYTES = 1024 * 1024;

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

/** Grown edges alive now, over the runtime. */
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
    if (!grow || grownNow >= GROWN_EDGES_BUDGET) break;
    // The kernel refuses past the allowance (or pipe-max-size): the pipe stays as it was.
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
 * Holds an attempt's part of the budget while its nodes live: each node is told as it starts
 * (its exit listened to at once: child_process tells an exit only to the listeners it already
 * has), `started()` once no more will start; `giveBack` runs when both are past.
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
