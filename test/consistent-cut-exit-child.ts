// Run by test/consistent-cut.test.ts as a separate process: a runtime on a stateDir starts a
// one-shot command that exits 7 on SIGTERM, waits until its actor knows the run, then writes its
// snapshot the moment the host sees the exit (the reaper has it; the actor hears it a thread
// crossing later), writes nothing more, and waits for the test's SIGKILL.
import { coreOf } from '../src/host/runtime.js';
import { createRuntime } from '../src/index.js';
import type { ChildEvent } from '../src/protocol/machine-events.js';
import type { WorkspaceEntry } from '../src/host/registry/registry.js';
import { stateName } from '../src/protocol/state-value.js';
import { waitFor } from './helpers.js';

const [stateDir, marker] = process.argv.slice(2);
if (!stateDir || !marker) throw new Error('usage: consistent-cut-exit-child <stateDir> <marker>');

const rt = await createRuntime({ stateDir, workers: 1, statsIntervalMs: 0 });
const core = coreOf(rt);
const ws = await rt.createWorkspace({ label: 'cut-exit' });
const run = await ws.run({ exec: 'sh', argv: ['-c', `trap 'exit 7' TERM; while :; do sleep 0.05; done; : ${marker}`], label: 'job' });
// The actor knows the run (its mirror says running), and a write holds that.
await waitFor(run.subscribe.bind(run), (snapshot) => stateName(snapshot.value) === 'running', 'the run known to its actor');
await core.state!.flush();
const tell = core.toChild.bind(core);
core.toChild = (entry: WorkspaceEntry, key: string, event: ChildEvent) => {
  // freeze(): collected a microtask from now, before any answer of the actor can come back.
  if (event.type === 'EXITED' && event.runId === run.id) {
    void core.state!.freeze().then(() => process.stdout.write(`${JSON.stringify({ runId: run.id, pid: run.pid })}\n`));
  }
  tell(entry, key, event);
};
process.kill(run.pid, 'SIGTERM');
await new Promise(() => undefined);
