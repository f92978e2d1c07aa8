// Run by test/slurm-workspace.test.ts as a separate process: a runtime on a stateDir asking Slurm
// for a workspace's allocation that cannot be granted yet (the test holds the nodes), SIGKILLed
// by the test while salloc waits.
import { createRuntime } from '../src/index.js';

const [stateDir, conf] = process.argv.slice(2);
if (!stateDir || !conf) throw new Error('usage: slurm-placing-crash-child <stateDir> <slurm.conf>');

const rt = await createRuntime({ stateDir, workers: 1, statsIntervalMs: 0, slurm: { conf } });
rt.createWorkspace({ label: 'queued', placement: { kind: 'slurm', nodes: 2 }, limits: { memoryBytes: 512 << 20 } }).catch(() => undefined);
process.stdout.write('asking\n');
await new Promise(() => undefined);
