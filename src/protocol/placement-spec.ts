import { checkCount, checkObject, checkText, describe, fail } from './checks.js';
import type { PlacementSpec } from './specs.js';

export type { PlacementInfo, PlacementSpec } from './specs.js';

// Where a workspace's processes run: this machine (the default), or a Slurm cluster's
// allocation (docs/placement.md maps every field to Slurm).

const SLURM_FIELDS = ['kind', 'nodes', 'nodelist', 'partition', 'account'] as const;
/** Slurm's node, partition and account names: no spaces, commas or brackets (those are hostlist syntax). */
const NAME = /^[A-Za-z0-9_.-]+$/;

export function validatePlacement(value: unknown): PlacementSpec {
  const o = checkObject(value, 'placement', SLURM_FIELDS);
  if (o.kind === 'local') {
    const extra = Object.keys(o).filter((key) => key !== 'kind');
    if (extra.length > 0) fail(`placement.${extra[0]}`, "is a Slurm field: a 'local' placement takes only kind");
    return { kind: 'local' };
  }
  if (o.kind !== 'slurm') fail('placement.kind', `must be 'local' or 'slurm' (got ${describe(o.kind)})`);
  if (o.nodes !== undefined) {
    checkCount(o.nodes, 'placement.nodes');
    if ((o.nodes as number) < 1) fail('placement.nodes', 'must be at least 1');
  }
  if (o.nodelist !== undefined) {
    if (!Array.isArray(o.nodelist) || o.nodelist.length === 0) fail('placement.nodelist', `must be a non-empty array of node names (got ${describe(o.nodelist)})`);
    o.nodelist.forEach((name, i) => checkName(name, `placement.nodelist[${i}]`));
    if (o.nodes !== undefined && (o.nodes as number) < o.nodelist.length) {
      fail('placement.nodes', `(${String(o.nodes)}) must be at least the length of nodelist (${o.nodelist.length})`);
    }
  }
  if (o.partition !== undefined) checkName(o.partition, 'placement.partition');
  if (o.account !== undefined) checkName(o.account, 'placement.account');
  return o as unknown as PlacementSpec;
}

/** A command's node: a name of the allocation, checked against it when the command starts. */
export function validateNode(value: unknown, field: string): string {
  return checkName(value, field);
}

function checkName(value: unknown, field: string): string {
  const text = checkText(value, field);
  if (!NAME.test(text)) fail(field, `must be a Slurm name (letters, digits, '_', '.', '-'), got ${describe(value)}`);
  return text;
}
