// Run by test/slurm-workspace.test.ts as a separate process: a runtime on a stateDir with one
// Slurm-placed workspace and a supervised command in it, SIGKILLed by the test once its snapshot
// (job id included) is on disk.
import { createRuntime } from '../src/index.js';
import { readSnapshotFile } from '../src/host/persistence/snapshot-file.js';

const [stateDir, conf, marker] = process.argv.slice(2);
if (!stateDir || !conf || !marker) throw new Error('usage: slurm-crash-child <stateDir> <slurm.conf> <marker>');

const rt = await createRuntime({ stateDir, workers: 1, statsIntervalMs: 0, slurm: { conf } });
const ws = await rt.createWorkspace({ label: 'kept', placement: { kind: 'slurm', nodes: 2 } });
await ws.run({ exec: 'sh', argv: ['-c', `echo up on $SLURMD_NODENAME; exec sleep 1000 # ${marker}`], label: 'sleeper', node: 'n2', restart: { onFailure: true, backoffMs: 10 } });
for (;;) {
  const read = await readSnapshotFile(stateDir);
  const saved = read.status === 'ok' ? (read.data as { workspaces: Array<{ id: string; processes: unknown[]; commands: unknown[]; placement?: unknown }> }).workspaces : [];
  // The command too, not only its process: a snapshot written between the spawn and the actor's
  // next persisted snapshot holds the process but an actor that does not know the command yet
  // (the restored runtime then kills the process and has nothing to run again).
  if (saved.some((w) => w.id === ws.id && w.processes.length > 0 && w.commands.length > 0 && w.placement)) break;
  await new Promise((resolve) => setTimeout(resolve, 20));
}
process.stdout.write(`ready ${ws.id} ${ws.placement.kind === 'slurm' ? ws.placement.jobId : ''}\n`);
await new Promise(() => undefined);
