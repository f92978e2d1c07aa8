import { closeSync, openSync, readSync } from 'node:fs';
import { listProcesses } from './proc.js';

// Sampling a workspace's processes from /proc when it has no cgroup: its runs and every
// descendant, found by walking /proc/<pid>/task/<pid>/children from the runs down, with a
// full /proc scan now and then for what that walk cannot see (a child of a thread other
// than the main one, an orphan whose parent exited). Every process's stat file is opened
// once and re-read with positional reads: one syscall per process and sample.

const CLOCK_TICKS_PER_SECOND = 100;
const USEC_PER_TICK = 1_000_000 / CLOCK_TICKS_PER_SECOND;
const PAGE_SIZE = 4096;
/** Every this many samples, a full /proc scan finds members the children walk missed. */
const FULL_SCAN_EVERY = 10;

export interface ProcUsage {
  rssBytes: number;
  /** CPU time of the live processes, their own and that of the children they waited for. */
  cpuUsec: number;
  processes: number;
  /** Per-process CPU, so a rate can be taken over the processes present in two samples. */
  cpuByPid: Map<number, number>;
}

const scratch = Buffer.alloc(1024);

function readAt(fd: number): string | null {
  try {
    const n = readSync(fd, scratch, 0, scratch.length, 0);
    return scratch.toString('latin1', 0, n);
  } catch {
    return null; // ESRCH: the process is gone (the fd never follows a reused pid)
  }
}

interface StatFields {
  state: string;
  pgrp: number;
  session: number;
  ticks: number;
  rssPages: number;
}

function parseStat(text: string): StatFields {
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return {
    state: fields[0] ?? '?',
    pgrp: Number(fields[2]),
    session: Number(fields[3]),
    // utime, stime, cutime, cstime
    ticks: Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]),
    rssPages: Number(fields[21]),
  };
}

function parseChildren(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(' ')) if (part.length > 0) out.push(Number(part));
  return out;
}

/** The processes of one workspace, tracked from sample to sample. */
export class ProcSampler {
  /** An open /proc/<pid>/stat per process: reads on it fail once the process is gone. */
  private readonly tracked = new Map<number, number>();
  /** An open /proc/<pid>/task/<pid>/children per process, re-read in place like the stat. */
  private readonly childrenFiles = new Map<number, number>();
  private samples = 0;

  /**
   * `roots` are the live runs (session and group leaders); `groups` every process group and
   * session the workspace's runs lead, alive or not.
   */
  sample(roots: readonly number[], groups: ReadonlySet<number>): ProcUsage {
    const wanted = new Set<number>(roots);
    const queue = [...roots];
    while (queue.length > 0) {
      for (const child of this.children(queue.pop()!)) {
        if (!wanted.has(child)) {
          wanted.add(child);
          queue.push(child);
        }
      }
    }
    if (this.samples++ % FULL_SCAN_EVERY === 0 && groups.size > 0) {
      for (const p of listProcesses()) if (groups.has(p.pgrp) || groups.has(p.session)) wanted.add(p.pid);
    }
    for (const pid of this.tracked.keys()) wanted.add(pid);

    const usage: ProcUsage = { rssBytes: 0, cpuUsec: 0, processes: 0, cpuByPid: new Map() };
    for (const pid of wanted) {
      const stat = this.read(pid);
      if (!stat || stat.state === 'Z' || stat.state === 'X') {
        this.forget(pid);
        continue;
      }
      usage.processes++;
      usage.rssBytes += stat.rssPages * PAGE_SIZE;
      const cpu = stat.ticks * USEC_PER_TICK;
      usage.cpuUsec += cpu;
      usage.cpuByPid.set(pid, cpu);
    }
    return usage;
  }

  private read(pid: number): StatFields | null {
    let fd = this.tracked.get(pid);
    if (fd === undefined) {
      try {
        fd = openSync(`/proc/${pid}/stat`, 'r');
      } catch {
        return null; // exited between discovery and now
      }
      this.tracked.set(pid, fd);
    }
    const text = readAt(fd);
    return text === null ? null : parseStat(text);
  }

  private children(pid: number): number[] {
    let fd = this.childrenFiles.get(pid);
    if (fd === undefined) {
      try {
        fd = openSync(`/proc/${pid}/task/${pid}/children`, 'r');
      } catch {
        return []; // exited, or a kernel without CONFIG_PROC_CHILDREN: the full scan covers it
      }
      this.childrenFiles.set(pid, fd);
    }
    return parseChildren(readAt(fd) ?? '');
  }

  private forget(pid: number): void {
    for (const files of [this.tracked, this.childrenFiles]) {
      const fd = files.get(pid);
      if (fd !== undefined) closeSync(fd);
      files.delete(pid);
    }
  }

  close(): void {
    for (const pid of new Set([...this.tracked.keys(), ...this.childrenFiles.keys()])) this.forget(pid);
  }
}
