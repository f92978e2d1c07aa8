import { constants } from 'node:os';
import type { ResourceLimits } from '../../../protocol/specs.js';

// A command of a Slurm-placed workspace is a job step, started by a local `srun` whose stdin,
// stdout and stderr are the host's own pipes: srun relays them to and from the task on its node,
// so log rings, kernel-pipe pipelines and taps work exactly as for a local process.

export interface StepOrder {
  jobId: string;
  node: string;
  /** The step's name (shuma-<run key>), by which it is found again to be signalled. */
  name: string;
  /** Applied to the task on its node, not to srun (a small nofile would break srun's own sockets). */
  limits?: ResourceLimits;
}

/** srun's arguments, before the program and its arguments. */
export function srunArgs(order: StepOrder): string[] {
  const args = [
    `--jobid=${order.jobId}`,
    // Steps share the allocation's CPUs and memory, as the processes of a local workspace share its cgroup.
    '--overlap',
    `--nodelist=${order.node}`,
    '--nodes=1',
    '--ntasks=1',
    `--job-name=${order.name}`,
    '--quiet',
  ];
  return args;
}

/** The task's own limits, set on its node by util-linux's prlimit before the program runs. */
export function stepLimitArgs(limits: ResourceLimits | undefined): string[] {
  if (!limits) return [];
  const args: string[] = [];
  // memoryBytes is the job's --mem (the node's cgroup enforces it), not an address-space cap.
  if (limits.nofile !== undefined) args.push(`--nofile=${limits.nofile}`);
  if (limits.cpuSeconds !== undefined) args.push(`--cpu=${limits.cpuSeconds}`);
  if (limits.nproc !== undefined) args.push(`--nproc=${limits.nproc}`);
  return args.length > 0 ? ['prlimit', ...args, '--'] : [];
}

/** The full command line of a step: srun, its options, limits on the node, the program. */
export function stepCommandLine(srun: string, order: StepOrder, program: string, argv: readonly string[]): { file: string; args: string[] } {
  return { file: srun, args: [...srunArgs(order), ...stepLimitArgs(order.limits), program, ...argv] };
}

/** What srun says about its task on stderr, read as it goes by (it shares the task's stderr). */
export interface StepReport {
  oom: boolean;
  nodeFailure: string | null;
  /** "task 0: Exited with exit code N": the task itself exited with N. */
  exitCode: number | null;
  /** "task 0: Killed" and the like: a signal ended the task. */
  signalText: string | null;
  /**
   * srun's I/O connection to slurmstepd broke mid-stream ("_server_read: … got error or
   * unexpected eof reading message body"): output after that point was lost (see step-task.ts).
   */
  outputLost: boolean;
}

const SIGNAL_TEXTS: Record<string, NodeJS.Signals> = {
  Killed: 'SIGKILL',
  Terminated: 'SIGTERM',
  Interrupt: 'SIGINT',
  Hangup: 'SIGHUP',
  Aborted: 'SIGABRT',
  'Segmentation fault': 'SIGSEGV',
  'User defined signal 1': 'SIGUSR1',
  'User defined signal 2': 'SIGUSR2',
  Quit: 'SIGQUIT',
  'Broken pipe': 'SIGPIPE',
  'Bus error': 'SIGBUS',
  'Floating point exception': 'SIGFPE',
  Alarm: 'SIGALRM',
  'Alarm clock': 'SIGALRM',
  'CPU time limit exceeded': 'SIGXCPU',
};

/** Reads srun's own lines out of the step's stderr, across chunk boundaries. */
export class StepReportReader {
  readonly report: StepReport = { oom: false, nodeFailure: null, exitCode: null, signalText: null, outputLost: false };
  private tail = '';

  write(chunk: Buffer): void {
    // Only srun's lines matter, and they are short: a bounded tail is enough to join a split line.
    const text = this.tail + chunk.toString('latin1');
    const lines = text.split('\n');
    this.tail = (lines.pop() ?? '').slice(-512);
    for (const line of lines) this.line(line);
  }

  end(): void {
    if (this.tail) this.line(this.tail);
    this.tail = '';
  }

  private line(line: string): void {
    let m: RegExpExecArray | null;
    if (/oom-kill event|task \d+: Out Of Memory/.test(line)) this.report.oom = true;
    else if (/^srun: error: (_server_read: .*(unexpected eof|error reading)|step_launch_notify_io_failure)/.test(line)) this.report.outputLost = true;
    else if ((m = /^srun: error: Node failure on (\S+)/.exec(line))) this.report.nodeFailure = m[1]!;
    else if ((m = /^srun: error: \S+: task \d+: Exited with exit code (\d+)/.exec(line))) this.report.exitCode = Number(m[1]);
    else if ((m = /^srun: error: \S+: task \d+: (.+?)( \(core dumped\))?$/.exec(line))) this.report.signalText = m[1]!;
  }
}

export interface StepExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  reason: 'oom' | 'node-lost' | null;
}

/**
 * The task's exit from srun's: srun exits with the task's code, or 128+n for a signal n; its own
 * note on stderr tells the two apart where it can. `nodeLost` comes from the job's node list.
 */
export function stepExit(srunCode: number | null, srunSignal: NodeJS.Signals | null, report: StepReport, nodeLost: boolean): StepExit {
  if (report.oom) return { code: null, signal: 'SIGKILL', reason: 'oom' };
  if (nodeLost || report.nodeFailure) return { code: null, signal: 'SIGKILL', reason: 'node-lost' };
  if (srunSignal !== null) return { code: null, signal: srunSignal, reason: null };
  if (report.signalText !== null) {
    const named = SIGNAL_TEXTS[report.signalText];
    if (named) return { code: null, signal: named, reason: null };
  }
  if (report.exitCode !== null) return { code: report.exitCode, signal: null, reason: null };
  if (srunCode !== null && srunCode > 128 && srunCode < 128 + 65) {
    const name = signalName(srunCode - 128);
    if (name) return { code: null, signal: name, reason: null };
  }
  return { code: srunCode, signal: null, reason: null };
}

function signalName(number: number): NodeJS.Signals | null {
  for (const [name, n] of Object.entries(constants.signals)) if (n === number) return name as NodeJS.Signals;
  return null;
}

/** srun's and slurmstepd's own lines ("srun: error: n2: task 0: Exited with exit code 3"). */
const NOTE_LINE = /^(srun|slurmstepd(-[^:\s]+)?): /;
const NOTE_PREFIXES = ['srun: ', 'slurmstepd'];

/**
 * Keeps srun's notes out of the command's stderr log, so that a step's stderr holds what the
 * program wrote, as a local command's does (the notes are read for the exit's reason instead).
 * Bytes pass at once, except a line start that may still become a note: held until its newline.
 */
export class NoteFilter {
  private held = '';
  private atLineStart = true;

  /** The bytes of `chunk` to pass on. */
  write(chunk: Buffer): Buffer {
    const text = this.held + chunk.toString('latin1');
    this.held = '';
    let out = '';
    let i = 0;
    while (i < text.length) {
      if (!this.atLineStart) {
        const nl = text.indexOf('\n', i);
        if (nl === -1) {
          out += text.slice(i);
          break;
        }
        out += text.slice(i, nl + 1);
        i = nl + 1;
        this.atLineStart = true;
        continue;
      }
      const nl = text.indexOf('\n', i);
      const line = nl === -1 ? text.slice(i) : text.slice(i, nl + 1);
      if (nl === -1 && NOTE_PREFIXES.some((p) => p.startsWith(line) || line.startsWith(p))) {
        this.held = line;
        break;
      }
      if (!NOTE_LINE.test(line)) out += line;
      if (nl === -1) {
        this.atLineStart = false;
        break;
      }
      i = nl + 1;
    }
    return Buffer.from(out, 'latin1');
  }

  /** What is still held at the end of the stream (a partial line that was no note after all). */
  end(): Buffer {
    const rest = NOTE_LINE.test(this.held) ? '' : this.held;
    this.held = '';
    return Buffer.from(rest, 'latin1');
  }
}
