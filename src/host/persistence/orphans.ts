import { createHash } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { isSameProcess, listProcesses, readProcStat, type ProcStat } from '../processes/proc.js';

// A runtime killed without a shutdown leaves its processes running: they are in sessions of
// their own, and nothing kills them with it. The next runtime on the same stateDir finds them
// by a mark every process it starts inherits — an environment variable naming the stateDir —
// so even one started a moment before the crash, not yet in any snapshot, and its descendants,
// are found. A reused pid cannot carry the mark: it names another program.

export const STATE_MARK_VARIABLE = 'SHUMA_STATE_ID';

/** The mark of one stateDir: the same for every runtime that opens it. */
export function stateMark(stateDir: string): string {
  return createHash('sha256').update(realpathSync(stateDir)).digest('hex').slice(0, 24);
}

function environOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1');
  } catch {
    return null; // gone, or a kernel thread: not ours either way
  }
}

/** Our own process and its ancestors: they may carry the mark (a runtime started from a workspace) and are not orphans. */
function selfAndAncestors(): Set<number> {
  const out = new Set<number>();
  for (let pid = process.pid; pid > 1 && !out.has(pid); ) {
    out.add(pid);
    pid = readProcStat(pid)?.ppid ?? 1;
  }
  return out;
}

/** Live processes that carry the stateDir's mark. */
export function findMarkedProcesses(mark: string): ProcStat[] {
  const needle = `${STATE_MARK_VARIABLE}=${mark}\0`;
  const exclude = selfAndAncestors();
  return listProcesses().filter((p) => !exclude.has(p.pid) && (environOf(p.pid)?.includes(needle) ?? false));
}

/** SIGKILLs each process (and the group it leads) and waits until none is left. */
export async function killProcesses(processes: readonly Pick<ProcStat, 'pid' | 'startTime'>[]): Promise<void> {
  for (const orphan of processes) {
    if (!isSameProcess(orphan)) continue;
    for (const target of [-orphan.pid, orphan.pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // Not a group leader, or already gone: the other target covers it.
      }
    }
  }
  // Not our children: nothing to wait on but /proc.
  for (let delay = 1; processes.some(isSameProcess); delay = Math.min(delay * 2, 50)) {
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
