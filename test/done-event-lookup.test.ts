import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SimulatedClock, type AnyStateNode } from 'xstate';
import { WorkerActors } from '../src/actors/worker-actors.js';
import { SHARED_DONE_TYPE } from '../src/machines/done-event-candidates.js';
import { workspaceMachine } from '../src/machines/workspace-machine.js';
import { resolveRestartPolicy } from '../src/protocol/validate-spec.js';

// Each command that ends sends its workspace a done event of a type of its own; XState memoises
// transitions per event type for ever, so each ended command left ~490 bytes on its actor thread
// (machines/done-event-candidates.ts).

setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

function settledHeap(): number {
  collect();
  collect();
  return process.memoryUsage().heapUsed;
}

test('a workspace actor keeps nothing per command that ended: 4000 one-shot commands leave under 200 bytes each', () => {
  const clock = new SimulatedClock();
  clock.set(1_796_000_000_000);
  const worker = new WorkerActors(() => undefined, clock, () => clock.now(), () => undefined, () => true, false);
  const policy = resolveRestartPolicy({ onFailure: false });
  const wsId = '01JF0000000000000000000001';
  let at = clock.now();
  worker.receive({ type: 'createWorkspace', wsId, label: 'jobs', ttlMs: null, at, supervision: null, groups: null });
  const jobs = (from: number, count: number) => {
    for (let i = from; i < from + count; i++) {
      const key = `K${String(i).padStart(8, '0')}`;
      worker.receive({ type: 'workspaceEvent', wsId, event: { type: 'RUN', at: ++at, key, label: `job-${i}`, policy } });
      worker.receive({ type: 'childEvent', wsId, key, event: { type: 'SPAWNED', at: ++at, runId: `R${i}`, pid: 1000 + i } });
      worker.receive({ type: 'childEvent', wsId, key, event: { type: 'EXITED', at: ++at, runId: `R${i}`, code: 0, signal: null, status: 0 } });
    }
  };
  jobs(0, 1000);
  const before = settledHeap();
  const measured = 4000;
  jobs(1000, measured);
  const perJob = (settledHeap() - before) / measured;
  assert.ok(perJob < 200, `${perJob.toFixed(0)} bytes left per ended command (before the fix: ~490)`);
});

test('no transition that answers a child\'s done event has a guard (its lookup sees the shared type)', () => {
  const matchesDone = (descriptor: string) =>
    descriptor === '*' || (descriptor.endsWith('.*') && SHARED_DONE_TYPE.startsWith(descriptor.slice(0, -1))) || descriptor.startsWith('xstate.done.actor.');
  let answering = 0;
  const visit = (node: AnyStateNode) => {
    for (const [descriptor, transitions] of node.transitions) {
      if (!matchesDone(descriptor)) continue;
      for (const transition of transitions) {
        answering++;
        assert.equal(transition.guard, undefined, `${node.id} on ${descriptor} has a guard: it would see ${SHARED_DONE_TYPE}, not the child's own done type`);
      }
    }
    for (const child of Object.values(node.states)) visit(child);
  };
  visit(workspaceMachine.root);
  assert.ok(answering > 0, 'the workspace machine answers its children\'s done events');
});
