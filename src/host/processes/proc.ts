import { readdirSync, readFileSync } from 'node:fs';

// Reading /proc: who is in a process group, who descends from whom, and whether a pid is
// still the process we think it is (its start time tells a reused pid apart).

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  /** Clock ticks after boot: with the pid, it names one process for all time. */
  startTime: number;
}

export function readProcStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (error) {
    // Gone: a normal outcome for a process that just exited. Anything else (EMFILE, ENOMEM) says
    // nothing about the process: taken for "gone", it would let a stop end with a live process
    // or a live lock owner be taken for dead.
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return null;
    throw error;
  }
  // comm may contain spaces and parentheses: it ends at the last ')'.
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  return {
    pid,
    comm: text.slice(text.indexOf('(') + 1, close),
    state: fields[0] ?? '?',
    ppid: Number(fields[1]),
    pgrp: Number(fields[2]),
    session: Number(fields[3]),
    startTime: Number(fields[19]),
  };
}

/** Every live process (zombies excluded: they hold nothing and cannot be signalled away). */
export function listProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const stat = readProcStat(pid);
    if (stat && stat.state !== 'Z' && stat.state !== 'X') out.push(stat);
  }
  return out;
}

/** Live members of the given process groups. */
export function groupMembers(pgids: ReadonlySet<number>, processes = listProcesses()): ProcStat[] {
  return processes.filter((p) => pgids.has(p.pgrp));
}

/** Every live descendant of the given pids, following parent links. */
export function descendantsOf(roots: ReadonlySet<number>, processes = listProcesses()): ProcStat[] {
  const children = new Map<number, ProcStat[]>();
  for (const p of processes) {
    const list = children.get(p.ppid);
    if (list) list.push(p);
    else children.set(p.ppid, [p]);
  }
  const out: ProcStat[] = [];
  const queue = [...roots];
  while (queue.length > 0) {
    const pid = queue.pop()!;
    for (const child of children.get(pid) ?? []) {
      out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}

/** Whether `pid` is still the very process seen earlier (not a reuse of its number). */
export function isSameProcess(seen: Pick<ProcStat, 'pid' | 'startTime'>): boolean {
  const now = readProcStat(seen.pid);
  return now !== null && now.startTime === seen.startTime && now.state !== 'Z' && now.state !== 'X';
}
