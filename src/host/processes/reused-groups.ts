// A run's process group outlives its leader while members are left in it (a daemon the run
// started), so a workspace keeps listing it after the run is reaped. While one member lives the
// kernel gives the group's number to no new process (the number stays taken until no process
// uses it as a pid, group or session). Once the last member ends, the number is free: the next
// process given it — a stranger, or another workspace's run, which leads a group of that number —
// must not be signalled, sampled or waited for as the workspace's.
import { processExists } from './signals.js';

/**
 * Forgets each group of `groups` whose number now names a process that is not one of `leaders`
 * (the scope's runs not yet reaped). Such a process proves the group emptied since its leader was
 * reaped, and its number went to someone else. One `kill(pid, 0)` per group without a leader.
 */
export function forgetReusedGroups(groups: Set<number>, leaders: readonly { pid: number }[]): void {
  if (groups.size === 0) return;
  // Most groups are led by a live run (a sample of a busy workspace): looked up, not asked of the kernel.
  const led = new Set<number>();
  for (const run of leaders) led.add(run.pid);
  for (const pgid of groups) if (!led.has(pgid) && processExists(pgid)) groups.delete(pgid);
}
