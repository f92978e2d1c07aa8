import { ShumaError } from '../../../protocol/errors.js';
import type { SpawnedProcess, Spawner, SpawnOrder } from '../../spawn/spawner.js';
import { PassThrough } from 'node:stream';
import { NoteFilter, StepReportReader, stepExit } from './step.js';
import { programReadsDevNull } from './step-task.js';

// The spawner a Slurm placement gives its host actor: the order is already an srun command line
// (step-orders.ts makes it); this starts it with the machine's own spawner, reads srun's notes
// on stderr, and reports the task's exit — not srun's — with its reason (oom, node-lost).

/** What the placement told srun, read back from its options. */
export interface StepMeta {
  jobId: string;
  node: string;
  name: string;
}

export function stepMetaOf(args: readonly string[]): StepMeta | null {
  const value = (flag: string) => args.find((a) => a.startsWith(`--${flag}=`))?.slice(flag.length + 3);
  const jobId = value('jobid');
  const node = value('nodelist');
  const name = value('job-name');
  return jobId && node && name ? { jobId, node, name } : null;
}

const OUTPUT_LOST =
  "this step's output is incomplete: srun lost its I/O connection to slurmstepd mid-stream (srun: error: _server_read …)";

/** Output after srun's exit that may still say why (its notes come last): waited for this long at most. */
const NOTES_WAIT_MS = 200;

export interface StepWatch {
  /** Refuses a spawn before it starts (the node is lost, the allocation is gone). */
  refusal(meta: StepMeta): ShumaError | null;
  started(pid: number, meta: StepMeta): void;
  ended(pid: number): void;
  /** Whether the node left the job's allocation (slurmd lost, node down). */
  isLost(jobId: string, node: string): boolean;
  /** srun said so ("Node failure on n2") before the job's watch saw it: the next run must not go there. */
  lostNode(jobId: string, node: string): void;
}

export class StepSpawner implements Spawner {
  readonly name: string;
  /** Limits go to the task through prlimit on its node, never to srun itself. */
  readonly appliesLimits = true;
  /** A step's srun takes far longer than the actor's round trip: relaunches and first runs go ahead (standing orders). */
  readonly actsAhead = true;

  constructor(
    private readonly inner: Spawner,
    private readonly watch: StepWatch,
  ) {
    this.name = `slurm+${inner.name}`;
  }

  async spawn(order: SpawnOrder): Promise<SpawnedProcess> {
    const meta = stepMetaOf(order.args);
    if (!meta) throw new ShumaError('INTERNAL', `a Slurm step order without its job, node and name: ${order.args.join(' ')}`);
    const refusal = this.watch.refusal(meta);
    if (refusal) throw refusal;
    // A command without stdin of its own: srun's stdin is a pipe held open until srun ended, so
    // that srun sends no stdin EOF that slurmstepd could leave unread, resetting the connection
    // and losing output; on the node the program reads /dev/null (step-task.ts).
    const held = order.stdio?.stdin === undefined;
    const args = held ? programReadsDevNull(order.args) : order.args;
    const stdio = held ? { ...order.stdio, stdin: 'pipe' as const } : order.stdio;
    const spawned = await this.inner.spawn({ ...order, args, ...(stdio ? { stdio } : {}), limits: undefined, cgroupProcsFiles: [] });
    const heldStdin = held ? spawned.stdin : null;
    if (heldStdin) {
      heldStdin.on('error', () => undefined);
      spawned.onExit(() => heldStdin.destroy());
    }
    this.watch.started(spawned.pid, meta);
    const reader = new StepReportReader();
    let notesEnded: Promise<void> = Promise.resolve();
    let stderr: PassThrough | null = null;
    if (spawned.stderr) {
      // The host reads the program's stderr; srun's own notes are read here, not logged.
      const filter = new NoteFilter();
      const out = (stderr = new PassThrough());
      spawned.stderr.on('data', (chunk: Buffer) => {
        reader.write(chunk);
        const kept = filter.write(chunk);
        if (kept.length > 0) out.write(kept);
      });
      notesEnded = new Promise((resolve) => {
        const done = () => {
          // srun's own notes are not logged, except this one: the user must see that output is missing.
          const lost = reader.report.outputLost ? Buffer.from(`shuma: ${OUTPUT_LOST}\n`) : Buffer.alloc(0);
          if (!out.writableEnded) out.end(Buffer.concat([filter.end(), lost]));
          resolve();
        };
        spawned.stderr!.once('end', done);
        spawned.stderr!.once('close', done);
      });
    }
    return {
      pid: spawned.pid,
      stdin: held ? null : spawned.stdin,
      stdout: spawned.stdout,
      stderr,
      node: meta.node,
      onOutputEnd: (listener) => spawned.onOutputEnd(listener),
      onExit: (listener) =>
        spawned.onExit((code, signal) => {
          let timer: NodeJS.Timeout | undefined;
          const capped = new Promise<void>((resolve) => (timer = setTimeout(resolve, NOTES_WAIT_MS)));
          void Promise.race([notesEnded, capped]).then(() => {
            clearTimeout(timer);
            reader.end();
            this.watch.ended(spawned.pid);
            const exit = stepExit(code, signal, reader.report, this.watch.isLost(meta.jobId, meta.node));
            if (exit.reason === 'node-lost') this.watch.lostNode(meta.jobId, meta.node);
            listener(exit.code, exit.signal, exit.reason ?? undefined);
          });
        }),
    };
  }
}
