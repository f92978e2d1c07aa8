import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setImmediate as nextTurn, setTimeout as delay } from 'node:timers/promises';
import { ControlFile, childCgroups, errorCode, parsePids, removeCgroupDir, removeNow, writeControl } from './files.js';
import type { CgroupSample, CgroupVersion, WorkspaceCgroup } from './types.js';

// One workspace's cgroup, v1 or v2 alike: the versions differ only in which files hold what,
// which CgroupLayout says; sampling, killing and removal are the same code.

/** A value read from one control file. */
export interface Counter {
  file: string;
  parse: (text: string) => number | null;
}

export interface CgroupLayout {
  version: CgroupVersion;
  /** The cgroup's directory in each hierarchy. */
  dirs: string[];
  /** Directories made between the parent and the leaves (a user path `a/b` makes `a`), outermost first. */
  intermediates: string[];
  memory: Counter | null;
  cpu: Counter | null;
  pids: Counter | null;
  /** pids.events: its `max` counts forks refused at pids.max. */
  pidsEvents: Counter | null;
  oomKills: Counter | null;
  /** v2 `cgroup.kill` (Linux 5.14+); null: kill pid by pid. */
  killFile: string | null;
}

interface OpenCounter {
  file: ControlFile;
  parse: (text: string) => number | null;
}

const DEFAULT_KILL_TIMEOUT_MS = 10_000;

function openCounter(counter: Counter | null): OpenCounter | null {
  if (!counter) return null;
  const file = ControlFile.open(counter.file);
  return file ? { file, parse: counter.parse } : null;
}

function readCounter(counter: OpenCounter | null): number | null {
  const text = counter?.file.read() ?? null;
  return text === null || !counter ? null : counter.parse(text);
}

/** The pids in one cgroup.procs; none once the cgroup is gone. */
function procsOf(dir: string): number[] {
  try {
    return parsePids(readFileSync(path.join(dir, 'cgroup.procs'), 'latin1'));
  } catch (error) {
    // ENOENT/ENODEV: the cgroup was removed (by us or by hand), so nothing is in it.
    if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENODEV') return [];
    throw error;
  }
}

function sigkill(pid: number): void {
  // Refuse rather than kill ourselves: the runtime must never sit in a workspace's cgroup.
  if (pid === process.pid) throw new Error(`the runtime itself (pid ${pid}) is in the workspace cgroup: refusing to kill it`);
  try {
    process.kill(pid, 'SIGKILL');
  } catch (error) {
    // ESRCH: it exited between reading cgroup.procs and the kill; that is what we wanted.
    if (errorCode(error) !== 'ESRCH') throw error;
  }
}

/** Between kill passes: let exits, reaping and other work run; the first wait is a bare turn. */
function pause(pass: number): Promise<unknown> {
  return pass === 0 ? nextTurn() : delay(Math.min(2 ** pass, 20));
}

export class CgroupHandle implements WorkspaceCgroup {
  readonly version: CgroupVersion;
  readonly dirs: readonly string[];
  readonly procsFiles: readonly string[];
  private readonly intermediates: readonly string[];
  private readonly counters: Record<'memory' | 'cpu' | 'pids' | 'pidsEvents' | 'oomKills', OpenCounter | null>;
  private killFile: string | null;
  private removal: Promise<void> | null = null;

  constructor(layout: CgroupLayout) {
    this.version = layout.version;
    this.dirs = [...layout.dirs];
    this.procsFiles = layout.dirs.map((dir) => path.join(dir, 'cgroup.procs'));
    this.intermediates = [...layout.intermediates];
    this.killFile = layout.killFile;
    this.counters = {
      memory: openCounter(layout.memory),
      cpu: openCounter(layout.cpu),
      pids: openCounter(layout.pids),
      pidsEvents: openCounter(layout.pidsEvents),
      oomKills: openCounter(layout.oomKills),
    };
  }

  sample(): CgroupSample {
    return {
      memoryBytes: readCounter(this.counters.memory),
      cpuUsec: readCounter(this.counters.cpu),
      pids: readCounter(this.counters.pids),
      forksRefused: readCounter(this.counters.pidsEvents),
    };
  }

  oomKills(): number {
    return readCounter(this.counters.oomKills) ?? 0;
  }

  pids(): number[] {
    const all = new Set<number>();
    for (const dir of this.dirs) {
      // Child cgroups too: a process inside may have made one and moved there.
      for (const cgroup of [dir, ...childCgroups(dir)]) for (const pid of procsOf(cgroup)) all.add(pid);
    }
    return [...all].sort((a, b) => a - b);
  }

  async killAll(options: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_KILL_TIMEOUT_MS);
    for (let pass = 0; ; pass++) {
      this.killPass();
      await pause(pass);
      const left = this.pids();
      if (left.length === 0) return;
      if (Date.now() >= deadline) {
        throw new Error(`cgroup ${this.dirs[0]} still holds pids ${left.join(', ')} after SIGKILL (a process stuck in uninterruptible sleep?)`);
      }
    }
  }

  /** One pass: cgroup.kill where the kernel has it (atomic against forks), else SIGKILL each pid seen now. */
  private killPass(): void {
    if (this.killFile !== null) {
      try {
        writeControl(this.killFile, '1');
        return;
      } catch {
        // cgroup.kill refused (missing, or not permitted here): kill pid by pid from now on.
        this.killFile = null;
      }
    }
    for (const pid of this.pids()) sigkill(pid);
  }

  remove(): Promise<void> {
    this.removal ??= this.removeDirs().catch((error: unknown) => {
      this.removal = null; // let a later call try again
      throw error;
    });
    return this.removal;
  }

  private async removeDirs(): Promise<void> {
    for (const counter of Object.values(this.counters)) counter?.file.close();
    for (const dir of this.dirs) {
      for (const child of childCgroups(dir)) await removeCgroupDir(child);
      await removeCgroupDir(dir);
    }
    // An intermediate may be shared with another workspace's user path (`a/b` and `a/c`): one
    // still in use stays (rmdir fails EBUSY), which is why failures are not errors here.
    removeNow(this.intermediates);
  }
}
