import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LaunchPlan, WorkspaceEntry } from '../src/host/registry/registry.js';
import type { LocalPlacementDeps } from '../src/host/placement/local-placement.js';
import type { SlurmJobs } from '../src/host/placement/slurm/slurm-jobs.js';
import { StepOrders } from '../src/host/placement/slurm/step-orders.js';
import { stepMetaOf } from '../src/host/placement/slurm/step-spawner.js';

// A Slurm step is signalled by its name (scancel --signal), and a workspace keeps its id across
// runtimes: a step the last runtime left running (adopted) must not share a name with a new one,
// or a stop of the new command signals the old one too. No cluster needed: the name is decided here.
describe('Slurm step names', () => {
  const ws = { id: '01KTESTWORKSPACE0000000000', spec: {} } as unknown as WorkspaceEntry;
  const plan = { spec: { node: 'n1' }, file: '/bin/true', label: 'job', env: {}, cwd: '/' } as unknown as LaunchPlan;
  const noJobs = { get: () => undefined } as unknown as SlurmJobs;
  const deps = {} as LocalPlacementDeps;
  const nameOf = (orders: StepOrders) => stepMetaOf(orders.orderFor(ws, plan).args)!.name;

  test("never repeat for one workspace, within a runtime or across the runtimes that restore it", () => {
    const first = new StepOrders(deps, noJobs);
    const restored = new StepOrders(deps, noJobs);
    const names = [nameOf(first), nameOf(first), nameOf(restored), nameOf(restored)];
    assert.equal(new Set(names).size, names.length, names.join(' '));
    // Still found by the workspace's id (what an operator greps squeue for).
    for (const name of names) assert.ok(name.startsWith(`shuma-${ws.id}-`), name);
  });
});
