// Run by test/persistence.test.ts as a separate process: a runtime on a stateDir, busy making
// workspaces, commands and pipelines, until the test SIGKILLs it at a random moment.
import { createRuntime } from '../src/index.js';

const [stateDir, marker, orphans] = process.argv.slice(2);
if (!stateDir || !marker) throw new Error('usage: crash-child <stateDir> <marker> [adopt]');

// 'adopt': its children outlive it, for the next runtime to take over; otherwise they die with it.
const rt = await createRuntime({ stateDir, workers: 1, statsIntervalMs: 0, ...(orphans === 'adopt' ? { orphans: 'adopt' as const } : {}) });
process.stdout.write('ready\n');
for (let i = 0; ; i++) {
  const ws = await rt.createWorkspace({ label: `crash-${i}`, ttlMs: 60_000 });
  await ws.run({ exec: 'sh', argv: ['-c', `sleep 1000; : ${marker}`], restart: { onFailure: true, backoffMs: 10 } });
  await ws.run({ exec: 'sh', argv: ['-c', `exit 1; : ${marker}`], restart: { onFailure: true, backoffMs: 5, maxRestarts: 3 } });
  await rt.runPipeline({
    label: `p-${i}`,
    workspace: ws.id,
    nodes: [
      { label: 'a', exec: 'sh', argv: ['-c', `sleep 1000; : ${marker}`] },
      { label: 'b', exec: 'cat' },
    ],
    edges: [{ from: 'a', to: 'b' }],
    restart: { onFailure: true, backoffMs: 10 },
  });
  await rt.savePipeline(`saved-${i % 3}`, {
    label: 'saved',
    workspace: ws.id,
    nodes: [{ label: 'x', exec: 'true' }],
    edges: [],
  });
  if (i % 2 === 1) await ws.stop({ graceMs: 0 });
}
