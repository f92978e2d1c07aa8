// Run by test/die-with-runtime.test.ts as a separate process: a runtime with a plain command, a
// supervised one and a pipeline, whose pids it prints before it waits to be killed.
import { createRuntime } from '../src/index.js';

const [stateDir] = process.argv.slice(2);
const rt = await createRuntime({ workers: 1, statsIntervalMs: 0, ...(stateDir ? { stateDir, orphans: 'adopt' as const } : {}) });
const ws = await rt.createWorkspace({ label: 'doomed' });
const plain = await ws.run({ exec: 'sleep', argv: ['1000'] });
const supervised = await ws.run({ exec: 'sleep', argv: ['1001'], restart: { onFailure: true, backoffMs: 10 } });
const pipeline = await rt.runPipeline({
  label: 'p',
  workspace: ws.id,
  nodes: [
    { label: 'a', exec: 'sleep', argv: ['1002'] },
    { label: 'b', exec: 'cat' },
  ],
  edges: [{ from: 'a', to: 'b' }],
});
const nodes = (await ws.commands()).filter((c) => c.pipelineId === pipeline.id).map((c) => c.pid);
process.stdout.write(`${JSON.stringify({ pids: [plain.pid, supervised.pid, ...nodes] })}\n`);
// Waits to be killed: nothing else of ours keeps the process alive for sure.
setInterval(() => undefined, 1 << 30);
