// Run by test/slurm-workspace.test.ts as a separate process: a runtime on a stateDir with one
// Slurm-placed workspace and a supervised command in it, SIGKILLed by the test once its snapshot
// (job id included, and the command's run known to its actor) is on disk.
import { createRuntime } from '../src/index.js';
import { readSnapshotFile } from '../src/host/persistence/snapshot-file.js';
import { knownRunIds } from '../src/host/persistence/restore.js';

const [stateDir, conf, marker] = process.argv.slice(2);
if (!stateDir || !conf || !marker) throw new Error('usage: slurm-crash-child <stateDir> <slurm.conf> <marker>');

const rt = await createRuntime({ stateDir, workers: 1, statsIntervalMs: 0, slurm: { conf } });
const ws = await rt.createWorkspace({ label: 'kept', placement: { kind: 'slurm', nodes: 2 } });
await ws.run({ exec: 'sh', argv: ['-c', `echo up on $SLURMD_NODENAME; exec sleep 1000 # ${marker}`], label: 'sleeper', node: 'n2', restart: { onFailure: true, backoffMs: 10 } });
// Ready once a snapshot on disk has the job and a run its workspace's actor knows: the process
// table and the actor's own snapshot are saved together but reach the host apart, and a file with
// the srun but not yet the command (2 in 12 at load ~15) restores a workspace with nothing to
// relaunch in it (the orphaned srun is killed, its step ends with it).
for (;;) {
  const read = await readSnapshotFile(stateDir);
  const saved = read.status === 'ok' ? (read.data as { workspaces: Array<{ id: string; actor: unknown; processes: Array<{ runId: string }>; placement?: unknown }> }).workspaces : [];
  const mine = saved.find((w) => w.id === ws.id && w.placement);
  const known = mine ? knownRunIds(mine.actor) : new Set<string>();
  if (mine && mine.processes.length > 0 && mine.processes.every((p) => known.has(p.runId))) break;
  await new Promise((resolve) => setTimeout(resolve, 20));
}
process.stdout.write(`ready ${ws.id} ${ws.placement.kind === 'slurm' ? ws.placement.jobId : ''}\n`);
await new Promise(() => undefined);
