// Run by test/consistent-cut.test.ts as a separate process: a runtime on a stateDir ('adopt')
// starts a supervised command (a one-shot one with `one-shot`) and writes its snapshot at once, the moment run() resolves (the
// host has the process; its actor hears SPAWNED a thread crossing later), then writes nothing
// more, and waits for the test's SIGKILL.
import { coreOf } from '../src/host/runtime.js';
import { createRuntime } from '../src/index.js';

const [stateDir, marker, kind = 'supervised'] = process.argv.slice(2);
if (!stateDir || !marker || !['supervised', 'one-shot'].includes(kind)) throw new Error('usage: consistent-cut-child <stateDir> <marker> [supervised|one-shot]');

const rt = await createRuntime({ stateDir, workers: 1, statsIntervalMs: 0, orphans: 'adopt' });
const core = coreOf(rt);
const ws = await rt.createWorkspace({ label: 'cut' });
// Nothing of the workspace's creation still to write: the next write is the one at the spawn.
await core.state!.flush();
const run = await ws.run({
  exec: 'sh',
  argv: ['-c', `sleep 1000; : ${marker}`],
  label: 'service',
  ...(kind === 'supervised' ? { restart: { onFailure: true, backoffMs: 10 } } : {}),
});
// freeze(): this write, and no later one (a later write would hold the actor caught up).
await core.state!.freeze();
process.stdout.write(`${JSON.stringify({ runId: run.id, pid: run.pid })}\n`);
await new Promise(() => undefined);
